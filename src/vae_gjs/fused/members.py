"""One fused member's run folder: exactly what its separate run writes (``vae_gjs.rundir``).

``config.yaml``, ``status.json``, ``metrics.csv`` (one row per epoch, then the test row, with the
steps Lightning logs them at), ``results.json``, ``checkpoints/last.ckpt`` every epoch and
``best.ckpt`` (lowest ``train/loss``) in the single-run checkpoint format, and the member's own
experiment loggers (W&B run in the sweep's group, TensorBoard) built from its own config.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import nn

from vae_gjs.callbacks import EpochBookkeeping, RandomState
from vae_gjs.callbacks.images import TrainingImages
from vae_gjs.config.runtime import logged_hyperparameters
from vae_gjs.data.base import ImageSource
from vae_gjs.io import atomic_open
from vae_gjs.lifecycle import RunRecorder, instantiate_all
from vae_gjs.loggers import AtomicCSVLogger, finish_wandb
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def _progress(ready: int, completed: int | None = None, started: bool = True) -> dict[str, int]:
    done = ready if completed is None else completed
    return {"ready": ready, "completed": done, **({"started": ready} if started else {})}


def _batch_progress(total: int, current: int, last: bool | None = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "total": {**_progress(total), "processed": total},
        "current": {**_progress(current), "processed": current},
    }
    if last is not None:
        record["is_last_batch"] = last
    return record


def lightning_loops(epoch: int, global_step: int, epoch_steps: int, last_batch: bool) -> dict[str, Any]:
    """The loop counters Lightning saves at the end of training epoch ``epoch`` after
    ``global_step`` steps (``epoch_steps`` of them in this epoch; ``last_batch``: the epoch ran
    to its end), so a separate run resumes a fused member's checkpoint at the next epoch.
    (Lightning 2.x layout; a checkpoint without it would restart at epoch 0.)"""
    steps = {"total": _progress(global_step, started=False), "current": _progress(epoch_steps, started=False)}
    zero_grad = {"total": _progress(global_step), "current": _progress(epoch_steps)}
    epochs = {**_progress(epoch + 1, completed=epoch), "processed": epoch + 1}
    idle = {"total": _progress(0, started=False), "current": _progress(0, started=False)}
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": global_step},
            "epoch_loop.batch_progress": _batch_progress(global_step, epoch_steps, last_batch),
            "epoch_loop.scheduler_progress": idle,
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {
                "optimizer": {"step": steps, "zero_grad": zero_grad}
            },
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": idle,
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": _batch_progress(0, 0),
            "epoch_progress": {"total": epochs, "current": dict(epochs)},
        },
        "validate_loop": {"state_dict": {}, "batch_progress": _batch_progress(0, 0)},
        "test_loop": {"state_dict": {}, "batch_progress": _batch_progress(0, 0)},
        "predict_loop": {"state_dict": {}, "batch_progress": _batch_progress(0, 0, last=None)},
    }


def checkpoint_record(
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    random_state: dict[str, Any],
    epoch: int,
    global_step: int,
    hparams: dict[str, Any],
    best: tuple[str, dict[str, Any]],
    loops: dict[str, Any],
    bookkeeping: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A checkpoint in the layout Lightning writes for a separate run (what ``evaluate.py`` and
    ``vae_gjs.checkpoints`` read): weights, Adam state, the RandomState callback's generators,
    the best-score record of the ModelCheckpoint callback, at an epoch's end the EpochBookkeeping
    callback's row, the loop counters, epoch and step."""
    callbacks = {RandomState().state_key: random_state, best[0]: best[1]}
    if bookkeeping is not None:
        callbacks[EpochBookkeeping().state_key] = bookkeeping
    return {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": weights,
        "loops": loops,
        "callbacks": callbacks,
        "optimizer_states": [optimizer],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }


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
        score = None if self.best_score is None else torch.tensor(self.best_score)
        path = str(self.run.best_ckpt) if self.best_score is not None else ""
        return self.checkpoint.state_key, {
            "monitor": self.checkpoint.monitor,
            "best_model_score": score,
            "best_model_path": path,
            "current_score": score,
            "dirpath": str(self.run.checkpoints),
            "best_k_models": {path: score} if path else {},
            "kth_best_model_path": path,
            "kth_value": score,
            "last_model_path": str(self.run.last_ckpt),
        }

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
