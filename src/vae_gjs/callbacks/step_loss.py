"""The training loss of single steps for the experiment loggers (``log_every_n_steps``).

The module logs epoch means only (``train/loss`` etc., one ``metrics.csv`` row per epoch); this
callback adds ``train/loss_step``, the loss of every ``every_n_steps``-th batch, to loggers that
plot steps (W&B, TensorBoard). ``metrics.csv`` stays one row per epoch.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from vae_gjs.errors import check_positive_int
from vae_gjs.loggers import AtomicCSVLogger


class StepLoss(Callback):
    """Log ``train/loss_step`` (the batch's loss, Eq. 22's objective) every ``every_n_steps``
    optimiser steps to every logger except the per-epoch CSV file."""

    def __init__(self, every_n_steps: int) -> None:
        self.every_n_steps = check_positive_int("log_every_n_steps", every_n_steps)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step  # already counts this batch's optimiser step
        if step % self.every_n_steps or not isinstance(outputs, dict) or "loss" not in outputs:
            return
        loss = float(outputs["loss"].detach())
        for logger in trainer.loggers:
            if not isinstance(logger, AtomicCSVLogger):
                logger.log_metrics({"train/loss_step": loss}, step=step)


def step_loss(every_n_steps: int | None) -> StepLoss | None:
    """The callback of conf/callbacks/step_loss/default.yaml: ``None`` when ``log_every_n_steps``
    is null."""
    return None if every_n_steps is None else StepLoss(every_n_steps)
