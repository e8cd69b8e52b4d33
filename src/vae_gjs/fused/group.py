"""Train a group of runs as one fused model: the fused counterpart of :func:`vae_gjs.tasks.train.train`.

The members' configs differ only in fusable keys (:mod:`vae_gjs.fused.plan`). Each member is
built exactly as its separate run builds it (``seed_everything(seed)``, then
:func:`~vae_gjs.module.build_module`), so it starts from the same weights and the same
generator state; it sees the same batches (:class:`~vae_gjs.data.base.InMemoryBatches` seeded by
``(shuffle_seed, epoch)``), draws the same noise (:mod:`vae_gjs.fused.rng`), and writes the same
run folder (:mod:`vae_gjs.fused.members`). A group resumes from its members' last.ckpt.

A member keeps every promise of a separate run: its folder is locked while the group trains it
(a member whose folder another process holds, or whose unfinished run has another config, is
refused in one line and the others train), and SIGTERM or Ctrl-C stops the group at the end of
its current step, each member's status saying why and where, its last.ckpt kept.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from vae_gjs import signals
from vae_gjs.callbacks import EpochBookkeeping, RandomState
from vae_gjs.checkpoints import check_fits, read_checkpoint
from vae_gjs.config.runtime import recorded_config
from vae_gjs.console import quiet_library_logs
from vae_gjs.data import InMemoryDataModule
from vae_gjs.data.base import InMemoryBatches
from vae_gjs.errors import ConfigError, Interrupted, NonFiniteLossError, RunError
from vae_gjs.fused.checkpoint import checkpoint_record, lightning_loops, read_member
from vae_gjs.fused.engine import FusedEngine
from vae_gjs.fused.members import MemberRun
from vae_gjs.fused.rng import MemberStreams, get_state
from vae_gjs.hardware import choose_device, use_threads
from vae_gjs.io import write_atomic_together
from vae_gjs.lifecycle import (
    BestCheckpoint,
    batches_per_epoch,
    evaluate_after_training,
    holding,
    recording_failures,
    run_results,
)
from vae_gjs.models.precision import check_precision
from vae_gjs.module import VAE, build_module
from vae_gjs.resume import check_same_config
from vae_gjs.rundir import COMPLETED, RunDir

log = logging.getLogger(__name__)

#: Lightning's default number of epochs when neither max_epochs nor max_steps is set.
DEFAULT_EPOCHS = 1000


class FusedGroup:
    """The members of one group, their engine and run folders."""

    def __init__(self, cfgs: Sequence[DictConfig]) -> None:
        self.cfgs = list(cfgs)
        base = self.cfgs[0]
        self.trainer_cfg = base.trainer
        self.device = choose_device("trainer.accelerator", str(base.trainer.accelerator))
        self.datamodule: InMemoryDataModule = instantiate(base.dataset)
        self.batches = batches_per_epoch(base, self.datamodule)
        modules: list[VAE] = []
        starts = []
        for cfg in self.cfgs:  # exactly a separate run's set-up: seed, then build the module
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            modules.append(build_module(cfg.module, self.datamodule.image_shape))
            starts.append(get_state(self.device))
        check_precision(modules[0].precision, self.device)
        self.engine = FusedEngine(modules, MemberStreams(self.device, starts), self.device)
        self.runs = [MemberRun(cfg) for cfg in self.cfgs]
        self.hparams = [dict(module.hparams) for module in modules]
        self.start_epoch = self._resume()
        self._epoch_start_step = self.engine.progress.global_step

    def _resume(self) -> int:
        """Load every member's last.ckpt (all or none have one); returns the epoch to start at."""
        present = [run.run.last_ckpt.is_file() for run in self.runs]
        if not any(present):
            return 0
        if not all(present):
            raise ConfigError(
                "a fused group's members must all have a last.ckpt or none (start them separately)"
            )
        steps = set()
        for member, run in enumerate(self.runs):
            record = read_checkpoint(run.run.last_ckpt)
            check_fits(record, self.engine.modules[member], run.run.last_ckpt, "the model of this config")
            state = read_member(record, run.checkpoint, self.device)
            self.engine.load_member(member, state.weights, state.optimizer)
            self.engine.streams.states[member] = state.stream.clone()
            run.best_score, run.restored_row = state.best_score, state.row
            steps.add((state.epoch, state.global_step))
        if len(steps) != 1:
            raise ConfigError(
                f"a fused group's members must resume from one epoch and step, got {sorted(steps)}"
            )
        epoch, step = steps.pop()
        self.engine.progress.global_step = step
        log.info(f"Resuming the fused group from epoch {epoch} (step {step})")
        return epoch + 1

    def _checkpoint(
        self, member: int, epoch: int, epoch_steps: int, last_batch: bool, row: dict[str, float] | None = None
    ) -> dict[str, Any]:
        """Member ``member``'s checkpoint in the single-run layout; ``row``: the metrics.csv row of
        the epoch it ends (the bookkeeping state of a separate run's end-of-epoch checkpoint)."""
        engine = self.engine
        step = engine.progress.member_step(member)
        with engine.streams.member(member):  # the member's stream is "the" generator here
            random_state = RandomState().state_dict()
        return checkpoint_record(
            engine.member_weights(member),
            engine.member_optimizer_state(member),
            random_state,
            epoch,
            step,
            self.hparams[member],
            self.runs[member].best_record(),
            lightning_loops(epoch, step, epoch_steps, last_batch),
            None if row is None else EpochBookkeeping.row_state(epoch, step - 1, row),
        )

    def _on_failure(self, member: int, error: NonFiniteLossError) -> None:
        """Member ``member`` stopped by a non-finite loss: recorded as a separate run records it,
        its weights of that step kept; the others train on."""
        progress = self.engine.progress
        step = progress.member_step(member)
        record = self._checkpoint(member, progress.epoch, step - self._epoch_start_step, False)
        run = self.runs[member]
        progress.failed[member] = run.recorder.stopped_by_non_finite_loss(
            error, step, lambda path: run.save(record, path.name)
        )
        run.close_loggers("failed")
        log.error(f"{run.run.path}: {progress.failed[member]}")

    def _end_epoch(self, epoch: int, metrics: dict[int, dict[str, float]], n_batches: int) -> None:
        """Each live member's row, then every member's last.ckpt (and best.ckpt) together: a kill
        or a full disk leaves all members at one resume point (a row written before its
        checkpoint is replaced when the epoch is repeated)."""
        step = self.engine.progress.global_step
        epoch_steps = step - self._epoch_start_step
        checkpoints: list[tuple[Path, dict[str, Any]]] = []
        for member, values in metrics.items():
            run = self.runs[member]
            run.log(values, epoch, step - 1)  # Lightning logs epoch-end rows at the last step
            best = run.improved(values["train/loss"])
            record = self._checkpoint(member, epoch, epoch_steps, epoch_steps == n_batches, values)
            checkpoints += [(run.run.best_ckpt, record)] * best + [(run.run.last_ckpt, record)]
        write_atomic_together(
            [
                (path, lambda handle, record=record: torch.save(record, handle))
                for path, record in checkpoints
            ],
            binary=True,
        )
        for member in metrics:
            self.runs[member].pictures(
                self.engine.member_net(member), self.datamodule.splits["test"].images, epoch + 1
            )

    def fit(self) -> float:
        """Train every member to ``max_epochs``/``max_steps``; returns the wall seconds."""
        trainer = self.trainer_cfg
        max_steps = int(trainer.max_steps if trainer.max_steps is not None else -1)
        max_epochs = trainer.max_epochs
        if max_epochs is None or max_epochs < 0:
            max_epochs = DEFAULT_EPOCHS if max_steps < 0 else 2**31
        self.datamodule.setup()
        train_split = self.datamodule.splits["train"]
        progress = self.engine.progress
        started = time.perf_counter()
        for epoch in range(self.start_epoch, max_epochs):
            if 0 < max_steps <= progress.global_step or not self.engine.alive:
                break
            self._stop_if_signalled()
            progress.epoch = epoch
            self._epoch_start_step = progress.global_step
            loader = InMemoryBatches(
                train_split,
                self.datamodule.batch_size,
                shuffle=True,
                seed=self.datamodule.shuffle_seed,
                epoch=lambda e=epoch: e,
            )
            n_batches = self.batches["train"]
            metrics = self.engine.train_epoch(
                loader, n_batches, max_steps, self._on_failure, stop=lambda: signals.received() is not None
            )
            self._stop_if_signalled()  # before the epoch's checkpoints: the epoch did not end
            self._end_epoch(epoch, metrics, n_batches)
            log.info(
                f"epoch {epoch}: {len(metrics)} of {self.engine.size} members alive, "
                f"{next(iter(metrics.values()), {}).get('time/epoch_s', 0):.1f} s"
            )
            progress.epoch = epoch + 1
        return time.perf_counter() - started

    @staticmethod
    def _stop_if_signalled() -> None:
        """Raise :class:`Interrupted` if SIGTERM or Ctrl-C arrived (recorded under ``polled``)."""
        if signals.received() is not None:
            raise Interrupted(signals.describe(SystemExit()))

    def test(self) -> dict[int, dict[str, float]]:
        loader = self.datamodule.loader("test", self.datamodule.eval_batch_size)
        return self.engine.test(loader, self.batches["test"])

    def run(self) -> list[Any]:
        """Fit, test and record every member; returns per member its test reconstruction error
        (``None`` with ``test=false``) or the exception that stopped it."""
        for run in self.runs:
            run.start(self.start_epoch)
        progress = self.engine.progress
        policy = recording_failures(  # the failure policy of a separate run, for every live member
            runs=lambda: [self.runs[member] for member in self.engine.alive],
            where=lambda: (progress.global_step, progress.epoch),
        )
        with policy, signals.polled():  # a signal stops the group at the end of its current step
            seconds = self.fit()
            tests = self.test() if self.cfgs[0].test else {m: {} for m in self.engine.alive}
            self._stop_if_signalled()
        outcomes: list[Any] = [progress.failed.get(m) for m in range(self.engine.size)]
        for member, test in tests.items():
            outcomes[member] = self._record(member, test, seconds)
        for member, cfg in enumerate(self.cfgs):
            if cfg.evaluate and member in tests:
                try:
                    evaluate_after_training(cfg, self.runs[member].run)
                except Exception as error:  # a member's evaluation failing does not fail the others
                    outcomes[member] = error
        return outcomes

    def _record(self, member: int, test: dict[str, float], seconds: float) -> Any:
        """Member ``member``'s test row and results (the one schema of a separate run's); returns
        its objective."""
        run, progress = self.runs[member], self.engine.progress
        if test:
            run.log(test, progress.epoch, progress.global_step)
        best = None
        if run.best_score is not None and run.run.best_ckpt.is_file():
            best = BestCheckpoint(run.run.best_ckpt.name, str(run.checkpoint.monitor), run.best_score)
        run.complete(run_results(test, progress.epoch, progress.global_step, seconds, best))
        log.info(f"Finished {run.run.path}: " + ", ".join(f"{k}={v:.4g}" for k, v in test.items()))
        return test.get(self.cfgs[member].objective)


def hold_member(held: contextlib.ExitStack, cfg: DictConfig) -> None:
    """Hold the member's run folder in ``held`` as a separate run holds its own
    (:func:`~vae_gjs.lifecycle.holding`), and refuse to resume an unfinished run with another
    config (:func:`~vae_gjs.resume.check_same_config`): a one-line :class:`RunError` each."""
    run = held.enter_context(holding(RunDir.at(cfg.run_dir)))
    if run.status == COMPLETED:
        raise ValueError(f"{cfg.run_dir} is completed; leave it out of the group")
    if run.last_ckpt.is_file():
        check_same_config(run, cfg, record=recorded_config)


def train_group(
    cfgs: Sequence[DictConfig], on_held: Callable[[list[int]], None] = lambda members: None
) -> list[Any]:
    """Train the runs ``cfgs`` (configs that differ only in fusable keys) as one fused model.
    Completed members must have been left out (the launcher skips them as ``train`` does).

    Each member's folder is held (:func:`hold_member`) before anything is written to it; a member
    refused there fails alone with its one-line error and the others train together.
    ``on_held(members)`` is called with the indices of the held members before they train (the
    launcher writes their ``.hydra/`` and opens their logs). Returns per member the test
    reconstruction error or the exception that stopped it."""
    outcomes: list[Any] = [None] * len(cfgs)
    quiet_library_logs()
    with contextlib.ExitStack() as held:
        members = []
        for index, cfg in enumerate(cfgs):
            try:
                hold_member(held, cfg)
            except RunError as error:
                log.error(f"{cfg.run_dir}: {error}")
                outcomes[index] = error
                continue
            members.append(index)
        if not members:
            return outcomes
        on_held(members)
        use_threads(cfgs[0].threads)
        for index, outcome in zip(members, FusedGroup([cfgs[i] for i in members]).run(), strict=True):
            outcomes[index] = outcome
    return outcomes
