"""One fused member's run folder: exactly what its separate run writes (``vae_gjs.rundir``).

``config.yaml``, ``status.json``, ``metrics.csv`` (one row per epoch, then the test row, with the
steps Lightning logs them at), ``results.json``, ``checkpoints/last.ckpt`` every epoch and
``best.ckpt`` (lowest ``train/loss``) in the single-run checkpoint format
(:mod:`vae_gjs.fused.checkpoint`), and the member's own
experiment loggers (W&B run in the sweep's group, TensorBoard) built from its own config.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import nn

from vae_gjs.callbacks.images import TrainingImages
from vae_gjs.config.runtime import logged_hyperparameters
from vae_gjs.data.base import ImageSource
from vae_gjs.fused.checkpoint import best_record
from vae_gjs.io import atomic_open
from vae_gjs.lifecycle import RunRecorder, instantiate_all
from vae_gjs.loggers import AtomicCSVLogger, finish_wandb
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


class MemberRun:
    """The run folder and loggers of one member, written as its separate run would write them.

    ``metrics.csv`` is written live (every epoch); the other loggers (W&B, TensorBoard) get the
    same rows when the member ends, because Lightning's W&B logger attaches to the one active
    W&B run of a process and a group has N members.
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.run = RunDir.at(cfg.run_dir)
        self.recorder = RunRecorder(self.run)
        loggers: list[Logger] = instantiate_all(cfg.logger)
        # The separate run's ModelCheckpoint (conf/callbacks): its state key and best-score record
        # go into the member's checkpoints.
        self.checkpoint: ModelCheckpoint = instantiate(cfg.callbacks.checkpoint)
        images = cfg.callbacks.get("images")
        self.images: TrainingImages | None = instantiate(images) if images is not None else None
        self.live = [logger for logger in loggers if isinstance(logger, AtomicCSVLogger)]
        self.deferred = [logger for logger in loggers if not isinstance(logger, AtomicCSVLogger)]
        self.rows: list[tuple[dict[str, float], int]] = []
        self.best_score: float | None = None
        #: The row of the epoch the resumed checkpoint ends (``EpochBookkeeping.row_state``).
        self.restored_row: dict[str, Any] | None = None

    def start(self, start_epoch: int) -> None:
        """``config.yaml`` and ``status.json`` (running); the CSV forgets rows from ``start_epoch``
        on and gets back the resumed checkpoint's row if it lacks it (as a separate run's
        EpochBookkeeping does)."""
        self.recorder.start(self.cfg, announce=False)  # as a separate run records it
        row = self.restored_row
        for logger in self.live:
            logger.start_epoch(start_epoch)
            if row is not None and row["epoch"] < start_epoch:
                logger.restore_row(row["epoch"], row["step"], row["metrics"])

    def log(self, metrics: dict[str, float], epoch: int, step: int) -> None:
        row = {**metrics, "epoch": epoch}
        self.rows.append((row, step))
        for logger in self.live:
            logger.log_metrics(row, step)

    def pictures(self, net: nn.Module, test_images: ImageSource, epochs_done: int) -> None:
        """The training-time pictures of ``conf/callbacks/images`` after ``epochs_done`` epochs,
        written to the same files as a separate run's (not sent to the loggers)."""
        if self.images is not None and self.images.due(epochs_done):
            self.images.write(net, test_images, next(net.parameters()).device, epochs_done)

    def save(self, record: dict[str, Any], name: str) -> None:
        """Write ``record`` to ``checkpoints/<name>`` atomically."""
        with atomic_open(self.run.checkpoints / name, "wb") as handle:
            torch.save(record, handle)

    def improved(self, loss: float) -> bool:
        """Whether ``loss`` beats the best ``train/loss`` so far (ModelCheckpoint's strict ``<``)."""
        if self.best_score is not None and not loss < self.best_score:
            return False
        self.best_score = loss
        return True

    def best_record(self) -> tuple[str, dict[str, Any]]:
        """The ``ModelCheckpoint`` state a separate run saves: its key and record."""
        return best_record(self.checkpoint, self.run, self.best_score)

    def _replay(self, status: str) -> None:
        """Hand the deferred loggers the config and the rows, then close them."""
        if not self.deferred:
            return
        hparams = logged_hyperparameters(self.cfg)
        if self.run.last_ckpt.is_file():  # what a separate run's ModelCheckpoint knows at the end
            self.checkpoint.load_state_dict(self.best_record()[1])
        try:
            for logger in self.deferred:
                logger.log_hyperparams(hparams)  # type: ignore[arg-type]
                for row, step in self.rows:
                    logger.log_metrics(row, step)
                logger.after_save_checkpoint(self.checkpoint)  # W&B: checkpoint_artifacts
                logger.finalize(status)
        finally:
            finish_wandb()

    def complete(self, results: dict[str, Any]) -> None:
        """``results.json`` and the status, as a separate run records them; then the loggers."""
        self.recorder.complete(results, debug=bool(self.cfg.debug_run))
        self._replay("success")

    def fail(self, error: str) -> None:
        """``status.json`` failed with ``error``, as a separate run records it; then the loggers."""
        self.recorder.fail(error)
        self.close_loggers("failed")

    def close_loggers(self, status: str) -> None:
        """The deferred loggers get the rows and close with ``status``; a logger that fails here
        is only logged (the run's status is what matters, and a logger must not hide it)."""
        try:
            self._replay(status)
        except Exception as replay_error:
            log.warning(f"{self.run.path}: closing the loggers failed ({replay_error})")
