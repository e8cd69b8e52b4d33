"""The training flow: config -> data, model, divergence -> Lightning Trainer -> run folder."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from vae_gjs import signals
from vae_gjs.callbacks import AtomicCheckpointIO
from vae_gjs.checkpoints import check_fits, read_checkpoint
from vae_gjs.config.runtime import limited_batches, logged_hyperparameters, recorded_config
from vae_gjs.config.validation import check_monitors, check_trainer_arguments
from vae_gjs.console import announce_run_folder, quiet_library_logs
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import ConfigError, Interrupted, NonFiniteLossError, StorageError
from vae_gjs.evaluation.runner import evaluate_run
from vae_gjs.hardware import choose_device, use_threads
from vae_gjs.loggers import finish_wandb
from vae_gjs.models.precision import check_precision
from vae_gjs.module import build_module
from vae_gjs.provenance import provenance
from vae_gjs.resume import check_length, check_same_config, train_on_completed
from vae_gjs.rundir import COMPLETED, DEBUG, FAILED, RUNNING, RunDir
from vae_gjs.runlock import RunLock

log = logging.getLogger(__name__)


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.trainer`` as ``lightning.Trainer`` arguments; a key that is no Trainer argument, or
    one that another group sets, is a :class:`ConfigError`."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(kwargs, dict)
    check_trainer_arguments(kwargs, set(inspect.signature(L.Trainer.__init__).parameters) - {"self"})
    ddp = "ddp" in str(kwargs.get("strategy"))
    hint = "for DDP on CPU processes (gloo) add trainer.accelerator=cpu trainer.devices=2" if ddp else None
    choose_device("trainer.accelerator", str(kwargs.get("accelerator", "auto")), hint)
    return kwargs


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


def slurm_plugins() -> list[Any]:
    """Under submitit on SLURM, requeueing is submitit's (its signal handler calls the checkpoint
    hook of Hydra's submitit launcher, which resubmits the same job into the same run folder):
    Lightning's own SLURM auto-requeue is turned off so that a preempted job is not requeued twice."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return []
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)]


def resume_from(cfg: DictConfig, run: RunDir) -> str | None:
    """The checkpoint to resume from: ``ckpt_path`` (``last`` meaning this run's last.ckpt), or
    the run folder's last.ckpt when an unfinished run left one there."""
    if cfg.ckpt_path == "last":
        path = run.checkpoint("last")
        check_same_config(run, cfg, record=recorded_config)
        return str(path)
    if cfg.ckpt_path is not None:
        return str(cfg.ckpt_path)
    if run.status == DEBUG and not cfg.debug_run:
        log.info(f"{run.path} holds a debug run: training from scratch, not from its checkpoint")
        return None
    if run.last_ckpt.is_file():
        check_same_config(run, cfg, record=recorded_config)
        log.info(f"Resuming the unfinished run in {run.path} from {run.last_ckpt.name}")
        return str(run.last_ckpt)
    return None


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


def record_composition(run: RunDir, cfg: DictConfig) -> None:
    """Hydra's record of this run's composition (``.hydra/``), when Hydra composed it."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        run.write_composition(cfg, HydraConfig.instance().cfg)  # type: ignore[arg-type]


def record_failure(run: RunDir, reason: str) -> None:
    """``status.json`` = failed with ``reason``; a disk that refuses even that is only logged (the
    error that stopped the run is the one the user must see)."""
    try:
        run.set_status(FAILED, error=reason)
    except StorageError as error:
        log.warning(f"could not record the failure in status.json: {error}")


def evaluate_after_training(cfg: DictConfig, run: RunDir) -> None:
    """Evaluate the run like ``evaluate.py run_dir=<run>`` with the options ``cfg.eval``
    (skipped when its eval.json is up to date)."""
    options = {**OmegaConf.to_container(cfg.eval, resolve=True), "data_dir": cfg.data_dir, "force": False}
    evaluate_run(run.path, OmegaConf.create(options))


def train(cfg: DictConfig, callbacks: Sequence[Callback] = ()) -> float | None:
    """Fit (or resume) the run described by ``cfg`` in ``cfg.run_dir``, test it, record results,
    and with ``evaluate=true`` evaluate it. ``callbacks`` are added to those of ``cfg.callbacks``.

    Returns the ``objective`` metric of the final model (``test/rec`` by default; ``val/rec``
    for a search). A run folder
    whose status is ``completed`` is not trained again, so re-running a sweep only runs what is
    missing. Only the process of rank 0 writes into the run folder, and it holds the folder's
    lock (:class:`~vae_gjs.runlock.RunLock`) while it does.
    """
    run = RunDir.at(cfg.run_dir)
    with holding(run) if rank_zero_only.rank == 0 else contextlib.nullcontext():
        return _train(cfg, run, callbacks)


def _train(cfg: DictConfig, run: RunDir, callbacks: Sequence[Callback]) -> float | None:
    if run.status == COMPLETED and not train_on_completed(run, cfg, record=recorded_config):
        done = run.results
        log.info(f"Skipping {run.path}: already completed ({done.get('epochs')} epochs) with this config")
        if cfg.evaluate and rank_zero_only.rank == 0:
            evaluate_after_training(cfg, run)
        return done.get(cfg.objective)
    if run.status == COMPLETED:
        log.info(f"Training the completed run in {run.path} on from its last.ckpt")
    quiet_library_logs()
    use_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # Build and check everything before writing to the run folder: a bad value or a checkpoint
    # that does not fit fails with the folder as it was (an unfinished run keeps its config.yaml
    # and status.json), instead of leaving a "running" status that nothing will update.
    kwargs = trainer_kwargs(cfg)
    datamodule: InMemoryDataModule = instantiate(cfg.dataset)
    if any(
        isinstance(cfg.trainer.get(f"limit_{split}_batches"), float) for split in ("train", "val", "test")
    ):
        batches_per_epoch(cfg, datamodule)  # a fraction: does it leave a batch? (loads the data)
    module = build_module(cfg.module, datamodule.image_shape)
    check_monitors(
        cfg.callbacks, module.epoch_metrics(datamodule.image_shape, datamodule.has_val) | {"time/epoch_s"}
    )
    if cfg.compile:
        module.net.compile()  # in place: the state_dict keeps its keys
    ckpt_path = resume_from(cfg, run)
    if ckpt_path is not None:
        checkpoint = read_checkpoint(ckpt_path)
        check_fits(checkpoint, module, ckpt_path, "the model of this config")
        where = str(run.path) if Path(ckpt_path).parent == run.checkpoints else ckpt_path
        check_length(where, checkpoint["epoch"] + 1, checkpoint["global_step"], cfg.trainer)
    loggers: list[Logger] = instantiate_all(cfg.logger)
    configured: list[Callback] = instantiate_all(cfg.callbacks)
    checkpoints = next((c for c in configured if isinstance(c, ModelCheckpoint)), None)
    if not datamodule.has_val:
        kwargs.update(limit_val_batches=0, num_sanity_val_steps=0)
    try:
        trainer = L.Trainer(
            **kwargs,
            default_root_dir=str(run.path),
            logger=loggers or False,
            callbacks=[*configured, *callbacks],
            plugins=[AtomicCheckpointIO(), *slurm_plugins()],
        )
    except (MisconfigurationException, ValueError, ImportError) as error:  # Lightning's own checks
        raise ConfigError(f"trainer: {' '.join(str(error).split())}") from error
    check_precision(module.precision, trainer.strategy.root_device)

    recorded = recorded_config(cfg)
    writer = rank_zero_only.rank == 0
    if writer:
        run.path.mkdir(parents=True, exist_ok=True)
        record_composition(run, cfg)
        run.write_config(recorded)
        run.set_status(RUNNING, pid=os.getpid())
        announce_run_folder(run.path)
    started = time.perf_counter()
    try:
        hparams = logged_hyperparameters(cfg)
        for logger in loggers:
            logger.log_hyperparams(hparams)  # type: ignore[arg-type]
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        fit_seconds = time.perf_counter() - started
        # the final model on the validation split (the split a search selects on) and the test set
        val = trainer.validate(module, datamodule=datamodule, verbose=False)[0] if datamodule.has_val else {}
        test = trainer.test(module, datamodule=datamodule, verbose=False)[0] if cfg.test else {}
    except NonFiniteLossError as error:
        saved = run.checkpoints / f"nonfinite-step{trainer.global_step}.ckpt"
        trainer.save_checkpoint(saved)
        stopped = NonFiniteLossError(f"{error}; {kept(run)}")
        if writer:
            record_failure(run, f"{stopped} (weights at that step: {saved.name})")
        raise stopped from error
    except BaseException as error:
        reason = stopped_reason(error, run, trainer.global_step, trainer.current_epoch)
        if writer:
            record_failure(run, reason)
        if signals.received() is not None:
            raise Interrupted(reason) from error
        raise
    finally:
        finish_wandb()

    best = checkpoints.best_model_score if checkpoints and checkpoints.best_model_path else None
    results = {
        **{key: float(value) for key, value in {**val, **test}.items()},
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds_this_session": round(fit_seconds, 2),
        # best.ckpt: the epoch of the lowest monitored loss (val/loss, or train/loss without a
        # validation split), named so that nobody mistakes it for a held-out choice
        "best_checkpoint": Path(checkpoints.best_model_path).name if best is not None else None,
        "best_checkpoint_monitor": checkpoints.monitor if best is not None else None,
        "best_checkpoint_score": float(best) if best is not None else None,
        **{f"{name}_learned": float(value) for name, value in module.divergence.learned().items()},
        "provenance": provenance(),
    }
    if writer:
        run.write_results(results)
        run.set_status(DEBUG if cfg.debug_run else COMPLETED)
        log.info(f"Finished {run.path}: " + ", ".join(f"{k}={v:.4g}" for k, v in {**val, **test}.items()))
        if cfg.evaluate:
            evaluate_after_training(cfg, run)
    return results.get(cfg.objective)
