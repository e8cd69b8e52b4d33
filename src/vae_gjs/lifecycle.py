"""One run's lifecycle, the same for a separate run (:mod:`vae_gjs.tasks.train`) and for every
member of a fused group (:mod:`vae_gjs.fused`):

1. hold the run folder (:func:`holding`: its lock, then the temporaries a killed writer left);
2. build and check everything before writing (the shared steps: :func:`instantiate_all`,
   :func:`batches_per_epoch`);
3. record the start (:meth:`RunRecorder.start`: ``config.yaml``, ``status.json`` running);
4. train and test under the failure policy (:func:`recording_failures`: a non-finite loss keeps
   the weights of its step, a signal says where it landed and what is kept, any error is the
   run's ``status.json`` and its one line);
5. record the results (:func:`run_results`, the one schema of ``results.json``, and
   :meth:`RunRecorder.complete`), then evaluate (:func:`evaluate_after_training`).

The names of what a run writes are minted by :class:`~vae_gjs.rundir.RunDir`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vae_gjs import signals
from vae_gjs.config.runtime import limited_batches, recorded_config
from vae_gjs.console import announce_run_folder
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import Interrupted, NonFiniteLossError, StorageError
from vae_gjs.evaluation.runner import evaluate_run
from vae_gjs.loggers import finish_wandb
from vae_gjs.provenance import provenance
from vae_gjs.rundir import COMPLETED, DEBUG, FAILED, RUNNING, RunDir
from vae_gjs.runlock import RunLock

log = logging.getLogger(__name__)


@contextlib.contextmanager
def holding(run: RunDir) -> Iterator[RunDir]:
    """Hold ``run``'s lock (:class:`~vae_gjs.runlock.RunLock`: a one-line :class:`RunError` when
    another process trains there) and remove the temporary files a killed writer left; nothing
    is written to the folder before."""
    with RunLock(run.path):
        stray = run.remove_stray_temporaries()
        if stray:
            log.info(f"{run.path}: removed {len(stray)} temporary file(s) of writes cut by a kill")
        yield run


def instantiate_all(group: DictConfig) -> list[Any]:
    """Instantiate every node of a group of named configs (``logger``, ``callbacks``), in order;
    nodes that are ``null`` or build ``None`` are dropped."""
    built = [instantiate(node) for node in group.values() if node is not None]
    return [item for item in built if item is not None]


def batches_per_epoch(cfg: DictConfig, datamodule: InMemoryDataModule) -> dict[str, int]:
    """The batches of each split's epoch under ``trainer.limit_*_batches`` (``train``, and ``val``
    and ``test`` where the run has them), checked before anything is written: a fraction that
    leaves no batch is a :class:`ConfigError` (Lightning would refuse it after the folder was
    written)."""
    splits = {"train": datamodule.batch_size, "val": None, "test": None}
    present = {"train": True, "val": datamodule.has_val, "test": bool(cfg.test)}
    return {
        split: limited_batches(
            f"trainer.limit_{split}_batches",
            len(datamodule.loader(split, batch_size)),
            cfg.trainer.get(f"limit_{split}_batches"),
        )
        for split, batch_size in splits.items()
        if present[split]
    }


def kept(run: RunDir) -> str:
    """Which checkpoint a stopped run leaves to resume from, for its one-line error."""
    if not run.last_ckpt.is_file():
        return "no checkpoint was saved yet (the next attempt starts from the beginning)"
    try:
        epoch = torch.load(run.last_ckpt, map_location="cpu", weights_only=True, mmap=True)["epoch"]
    except Exception:  # whatever torch raises for an unreadable file: the message stays general
        return "last.ckpt is kept"
    return f"last.ckpt (end of epoch {epoch}) is kept"


def stopped_reason(error: BaseException, run: RunDir, step: int, epoch: int) -> str:
    """Why a run stopped, for its status.json and its one line: a signal with where it landed
    (``step``, ``epoch``) and which checkpoint is kept, or the error."""
    reason = signals.describe(error)
    if signals.received() is not None:
        reason += f" at step {step} (epoch {epoch}); {kept(run)}; the same command resumes the run"
    return reason


@dataclass(frozen=True)
class BestCheckpoint:
    """best.ckpt: the epoch of the lowest monitored loss (``val/loss``, or ``train/loss`` without a
    validation split), named in results.json so that nobody mistakes it for a held-out choice."""

    name: str
    monitor: str
    score: float


def run_results(
    metrics: Mapping[str, Any],
    epochs: int,
    steps: int,
    fit_seconds: float,
    best: BestCheckpoint | None,
    learned: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one schema of ``results.json``: the final model's ``metrics`` (``val/*``, ``test/*``),
    how long it trained, its best checkpoint, the divergence's learned scalars (``alpha_learned``)
    and the provenance (git commit, package versions)."""
    return {
        **{key: float(value) for key, value in metrics.items()},
        "epochs": epochs,
        "steps": steps,
        "fit_seconds_this_session": round(fit_seconds, 2),
        "best_checkpoint": best.name if best is not None else None,
        "best_checkpoint_monitor": best.monitor if best is not None else None,
        "best_checkpoint_score": float(best.score) if best is not None else None,
        **{f"{name}_learned": float(value) for name, value in (learned or {}).items()},
        "provenance": provenance(),
    }


class RunRecorder:
    """The record of one run folder: what a separate run and a fused member write about their run,
    in one place. ``writer``: whether this process writes (rank 0 of a multi-process run; the
    others only compute the same messages)."""

    def __init__(self, run: RunDir, writer: bool = True) -> None:
        self.run = run
        self.writer = writer

    def record_composition(self, task_cfg: DictConfig, hydra_cfg: DictConfig) -> None:
        """Hydra's record of the run's composition (``.hydra/``), once the folder is held."""
        if self.writer:
            self.run.write_composition(task_cfg, hydra_cfg)

    def start(
        self, cfg: DictConfig, composition: tuple[DictConfig, DictConfig] | None = None, announce: bool = True
    ) -> None:
        """``.hydra/`` (``composition``: the task's and Hydra's config, if given), ``config.yaml``
        (the config as recorded: :func:`~vae_gjs.config.runtime.recorded_config`) and
        ``status.json`` = running with this process's pid; with ``announce`` the folder is logged."""
        if not self.writer:
            return
        self.run.path.mkdir(parents=True, exist_ok=True)
        if composition is not None:
            self.record_composition(*composition)
        self.run.write_config(recorded_config(cfg))
        self.run.set_status(RUNNING, pid=os.getpid())
        if announce:
            announce_run_folder(self.run.path)

    def fail(self, reason: str) -> None:
        """``status.json`` = failed with ``reason``; a disk that refuses even that is only logged
        (the error that stopped the run is the one the user must see)."""
        if not self.writer:
            return
        try:
            self.run.set_status(FAILED, error=reason)
        except StorageError as error:
            log.warning(f"could not record the failure in status.json: {error}")

    def stopped_by_non_finite_loss(
        self, error: NonFiniteLossError, step: int, save: Callable[[Path], None]
    ) -> NonFiniteLossError:
        """A non-finite loss at ``step``: the weights of that step saved by ``save`` to
        ``checkpoints/nonfinite-step<step>.ckpt``, the failure recorded with which checkpoint is
        kept; returns the error to raise."""
        path = self.run.non_finite_ckpt(step)
        save(path)
        stopped = NonFiniteLossError(f"{error}; {kept(self.run)}")
        self.fail(f"{stopped} (weights at that step: {path.name})")
        return stopped

    def complete(self, results: dict[str, Any], debug: bool = False) -> None:
        """``results.json`` (:func:`run_results`) and ``status.json`` = completed (``debug`` for a
        debug preset's run, never skipped nor reported)."""
        if self.writer:
            self.run.write_results(results)
            self.run.set_status(DEBUG if debug else COMPLETED)


class Recorded(Protocol):
    """What the failure policy records a stopped run through: its folder and how it fails."""

    run: RunDir

    def fail(self, reason: str) -> None: ...


@contextlib.contextmanager
def recording_failures(
    runs: Callable[[], Sequence[Recorded]],
    where: Callable[[], tuple[int, int]],
    non_finite: Callable[[NonFiniteLossError], NonFiniteLossError] | None = None,
) -> Iterator[None]:
    """The failure policy of training, for a separate run and a fused group alike (the
    ``task_wrapper`` of lightning-hydra-template): whatever stops the body stops ``runs()`` (the
    runs still training) with their reason in ``status.json`` — a signal with the step and epoch
    ``where()`` gives and the checkpoint kept, any other error as itself — and a signal is raised
    as :class:`Interrupted` with that reason. ``non_finite``, given, handles a non-finite loss
    itself (keeping the weights of the step) and returns the error to raise. W&B's run is closed
    in every case."""
    try:
        yield
    except BaseException as error:
        if non_finite is not None and isinstance(error, NonFiniteLossError):
            raise non_finite(error) from error
        step, epoch = where()
        stopped = list(runs())
        reasons = [stopped_reason(error, run.run, step, epoch) for run in stopped]
        for run, reason in zip(stopped, reasons, strict=True):
            run.fail(reason)
        if signals.received() is not None and reasons:
            raise Interrupted(reasons[0]) from error
        raise
    finally:
        finish_wandb()


def evaluate_after_training(cfg: DictConfig, run: RunDir) -> None:
    """Evaluate the run like ``evaluate.py run_dir=<run>`` with the options ``cfg.eval``
    (skipped when its eval.json is up to date)."""
    options = {**OmegaConf.to_container(cfg.eval, resolve=True), "data_dir": cfg.data_dir, "force": False}
    evaluate_run(run.path, OmegaConf.create(options))
