"""``last.ckpt`` after every epoch, whatever the monitored loss did."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class LastAndBestCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` (``conf/callbacks/default.yaml``: ``best.ckpt``, the
    lowest monitored loss, and ``last.ckpt``) with ``last.ckpt`` written at the end of every
    epoch, as ``save_last`` did before Lightning 2.6.

    Since 2.6, ``save_last=True`` writes ``last.ckpt`` only when a top-k checkpoint was saved at
    the same step: with ``save_top_k=1``, only when the loss improved. ``last.ckpt`` was then the
    best epoch's weights: a run cut after an epoch without improvement resumed from an older epoch
    and trained it again, and ``eval.checkpoint=last`` measured the best epoch, not the last (seen
    on a 100-epoch MNIST run: last.ckpt held epoch 99's weights). A fused member writes its
    ``last.ckpt`` every epoch, so both paths now keep the same files.

    Its :attr:`state_key` is :class:`ModelCheckpoint`'s, so checkpoints written with either class
    resume with the other's best-score record.
    """

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_saved_step = trainer.global_step

    def _save_last_if_missed(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` unless this step's was written (or nothing may be saved now)."""
        done = getattr(self, "_last_saved_step", None) == trainer.global_step
        if not self.save_last or done or trainer.global_step == 0:  # 0: no step was taken
            return
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
