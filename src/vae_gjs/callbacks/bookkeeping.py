"""Per-epoch bookkeeping and the progress bar."""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, TQDMProgressBar


class EpochBookkeeping(Callback):
    """Logs wall seconds per epoch (``time/epoch_s``) and tells the CSV logger where a resumed
    run starts, so repeated epochs replace their rows instead of duplicating them. A run resumed
    in the middle of an epoch (one stopped by ``max_steps``) gets no ``on_train_epoch_start`` for
    it: its ``time/epoch_s`` counts from the resumption."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        for logger in trainer.loggers:
            if hasattr(logger, "start_epoch"):
                logger.start_epoch(trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._started, on_epoch=True)


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar without the logger's version number (W&B's run id, noise here),
    counting the steps that will run when ``max_steps`` ends the epoch early."""

    @property
    def total_train_batches(self) -> int | float:
        """The batches this epoch will run: fewer than the epoch has when ``max_steps`` ends
        training sooner (Lightning shortens the bar only when ``max_epochs=-1``)."""
        total = super().total_train_batches
        max_steps = self.trainer.max_steps
        if max_steps is not None and max_steps > 0:
            left = (max_steps - self.trainer.global_step) * self.trainer.accumulate_grad_batches
            total = min(total, left)
        return total

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def progress_bar(enabled: bool = True) -> TQDMProgressBar | None:
    """A progress bar refreshed every step on a terminal, every 100 steps into a log file;
    ``None`` when not ``enabled`` (``trainer.enable_progress_bar=false``: Lightning refuses a
    progress-bar callback then)."""
    return ProgressBar(refresh_rate=1 if sys.stderr.isatty() else 100) if enabled else None
