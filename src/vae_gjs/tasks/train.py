"""The training task of a separate run: build (and check) everything, fit and test, record the run
folder (:mod:`vae_gjs.lifecycle`, shared with the fused members) — ``_train`` reads as those
three steps."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from vae_gjs.callbacks import AtomicCheckpointIO
from vae_gjs.checkpoints import check_fits, read_checkpoint
from vae_gjs.config.runtime import logged_hyperparameters, recorded_config
from vae_gjs.config.validation import check_monitors, check_trainer_arguments
from vae_gjs.console import quiet_library_logs
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import ConfigError
from vae_gjs.hardware import choose_device, use_threads
from vae_gjs.lifecycle import (
    BestCheckpoint,
    RunRecorder,
    batches_per_epoch,
    evaluate_after_training,
    holding,
    instantiate_all,
    recording_failures,
    run_results,
)
from vae_gjs.models.precision import check_precision
from vae_gjs.module import VAE, build_module
from vae_gjs.resume import check_length, check_same_config, train_on_completed
from vae_gjs.rundir import COMPLETED, DEBUG, RunDir

log = logging.getLogger(__name__)


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.trainer`` as ``lightning.Trainer`` arguments; a key that is no Trainer argument, or
    one that another group sets, is a :class:`ConfigError`, and so is a GPU the machine lacks."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(kwargs, dict)
    check_trainer_arguments(kwargs, set(inspect.signature(L.Trainer.__init__).parameters) - {"self"})
    ddp = "ddp" in str(kwargs.get("strategy"))
    hint = "for DDP on CPU processes (gloo) add trainer.accelerator=cpu trainer.devices=2" if ddp else None
    choose_device("trainer.accelerator", str(kwargs.get("accelerator", "auto")), hint)
    return kwargs


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


def check_resumable(cfg: DictConfig, run: RunDir, module: VAE, ckpt_path: str) -> None:
    """The checkpoint to resume from fits the model and the run's length (one line each)."""
    checkpoint = read_checkpoint(ckpt_path)
    check_fits(checkpoint, module, ckpt_path, "the model of this config")
    where = str(run.path) if Path(ckpt_path).parent == run.checkpoints else ckpt_path
    check_length(where, checkpoint["epoch"] + 1, checkpoint["global_step"], cfg.trainer)


@dataclass
class Built:
    """Everything a separate run trains with, built and checked before its folder is written."""

    datamodule: InMemoryDataModule
    module: VAE
    trainer: L.Trainer
    loggers: list[Logger]
    checkpoint: ModelCheckpoint | None
    ckpt_path: str | None


def build(cfg: DictConfig, run: RunDir, callbacks: Sequence[Callback]) -> Built:
    """Build and check everything before writing to the run folder: a bad value or a checkpoint
    that does not fit fails with the folder as it was (an unfinished run keeps its config.yaml
    and status.json), instead of leaving a "running" status that nothing will update."""
    kwargs = trainer_kwargs(cfg)
    datamodule: InMemoryDataModule = instantiate(cfg.dataset)
    if any(
        isinstance(cfg.trainer.get(f"limit_{split}_batches"), float) for split in ("train", "val", "test")
    ):
        batches_per_epoch(cfg, datamodule)  # a fraction: does it leave a batch? (loads the data)
    module = build_module(cfg.module, datamodule.image_shape)
    logged = module.epoch_metrics(datamodule.image_shape, datamodule.has_val) | {"time/epoch_s"}
    check_monitors(cfg.callbacks, logged)
    if cfg.compile:
        module.net.compile()  # in place: the state_dict keeps its keys
    ckpt_path = resume_from(cfg, run)
    if ckpt_path is not None:
        check_resumable(cfg, run, module, ckpt_path)
    loggers: list[Logger] = instantiate_all(cfg.logger)
    configured: list[Callback] = instantiate_all(cfg.callbacks)
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
    checkpoint = next((c for c in configured if isinstance(c, ModelCheckpoint)), None)
    return Built(datamodule, module, trainer, loggers, checkpoint, ckpt_path)


def fit_and_test(cfg: DictConfig, built: Built) -> tuple[dict[str, Any], float]:
    """Fit (or resume), then the final model on the validation split (the split a search selects
    on) and the test set: their metrics, and the seconds of the fit."""
    trainer, module, datamodule = built.trainer, built.module, built.datamodule
    started = time.perf_counter()
    hparams = logged_hyperparameters(cfg)
    for logger in built.loggers:
        logger.log_hyperparams(hparams)  # type: ignore[arg-type]
    trainer.fit(module, datamodule=datamodule, ckpt_path=built.ckpt_path)
    fit_seconds = time.perf_counter() - started
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0] if datamodule.has_val else {}
    test = trainer.test(module, datamodule=datamodule, verbose=False)[0] if cfg.test else {}
    return {**val, **test}, fit_seconds


def best_checkpoint(callback: ModelCheckpoint | None) -> BestCheckpoint | None:
    """The run's best.ckpt as ``ModelCheckpoint`` chose it (``None``: no such callback or file)."""
    if callback is None or not callback.best_model_path or callback.best_model_score is None:
        return None
    return BestCheckpoint(
        Path(callback.best_model_path).name, str(callback.monitor), float(callback.best_model_score)
    )


def composition(cfg: DictConfig) -> tuple[DictConfig, DictConfig] | None:
    """This run's composition for ``.hydra/``, when Hydra composed it."""
    from hydra.core.hydra_config import HydraConfig

    return (cfg, HydraConfig.instance().cfg) if HydraConfig.initialized() else None  # type: ignore[return-value]


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


def skip_completed(cfg: DictConfig, run: RunDir) -> Any:
    """A completed run with this config is not trained again (evaluated if asked); its objective."""
    done = run.results
    log.info(f"Skipping {run.path}: already completed ({done.get('epochs')} epochs) with this config")
    if cfg.evaluate and rank_zero_only.rank == 0:
        evaluate_after_training(cfg, run)
    return done.get(cfg.objective)


def _train(cfg: DictConfig, run: RunDir, callbacks: Sequence[Callback]) -> float | None:
    """A separate run in three steps: build (everything checked before the folder is written),
    fit and test under the failure policy (:func:`~vae_gjs.lifecycle.recording_failures`), record
    the results (:class:`~vae_gjs.lifecycle.RunRecorder`) and evaluate; a completed run with this
    config is skipped. Returns the ``objective`` metric."""
    if run.status == COMPLETED:
        if not train_on_completed(run, cfg, record=recorded_config):
            return skip_completed(cfg, run)
        log.info(f"Training the completed run in {run.path} on from its last.ckpt")
    quiet_library_logs()
    use_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    built = build(cfg, run, callbacks)  # 1. build: everything checked before the folder is written

    recorder = RunRecorder(run, writer=rank_zero_only.rank == 0)
    recorder.start(cfg, composition(cfg))
    trainer = built.trainer
    with recording_failures(  # 2. fit and test, the failure policy around them
        runs=lambda: [recorder],
        where=lambda: (trainer.global_step, trainer.current_epoch),
        non_finite=lambda error: recorder.stopped_by_non_finite_loss(
            error, trainer.global_step, trainer.save_checkpoint
        ),
    ):
        metrics, fit_seconds = fit_and_test(cfg, built)

    results = run_results(  # 3. record, then evaluate
        metrics,
        trainer.current_epoch,
        trainer.global_step,
        fit_seconds,
        best_checkpoint(built.checkpoint),
        built.module.divergence.learned(),
    )
    recorder.complete(results, debug=cfg.debug_run)
    if recorder.writer:
        log.info(f"Finished {run.path}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if cfg.evaluate:
            evaluate_after_training(cfg, run)
    return results.get(cfg.objective)
