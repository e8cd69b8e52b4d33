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
    it: its ``time/epoch_s`` counts from the resumption.

    Lightning saves an epoch's last.ckpt before it hands the loggers that epoch's row, so a kill
    between the two would leave a resumed run without the row: every end-of-epoch checkpoint
    carries the row (:meth:`state_dict`), and a run resumed from it puts the row back into a
    ``metrics.csv`` that lacks it."""

    def __init__(self) -> None:
        self._trainer: L.Trainer | None = None
        self._ended_epoch: int | None = None
        self._restored: dict[str, Any] = {}

    @staticmethod
    def row_state(epoch: int, step: int, metrics: dict[str, float]) -> dict[str, Any]:
        """The checkpointed record of epoch ``epoch``'s ``metrics.csv`` row (logged at ``step``)."""
        return {"row": {"epoch": epoch, "step": step, "metrics": dict(metrics)}}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()
        row = self._restored.get("row")
        for logger in trainer.loggers:
            if hasattr(logger, "start_epoch"):
                logger.start_epoch(trainer.current_epoch)
            if row is not None and hasattr(logger, "restore_row") and row["epoch"] < trainer.current_epoch:
                logger.restore_row(row["epoch"], row["step"], row["metrics"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._started, on_epoch=True)
        self._ended_epoch = trainer.current_epoch

    def state_dict(self) -> dict[str, Any]:
        """At the end of an epoch (the checkpoint callback saves after this one's epoch-end hook):
        the epoch's row, as the loggers will get it; in the middle of one, nothing."""
        trainer = self._trainer
        if trainer is None or self._ended_epoch != trainer.current_epoch:
            return {}
        metrics = {key: float(value) for key, value in trainer.logged_metrics.items()}
        return self.row_state(trainer.current_epoch, trainer.global_step - 1, metrics)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = dict(state_dict)


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
