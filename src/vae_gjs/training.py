"""The training flow: config -> data, model, divergence -> Lightning Trainer -> run folder."""

from __future__ import annotations

import inspect
import logging
import os
import random
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from vae_gjs.checkpoints import check_fits, read_checkpoint
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import ConfigError, NonFiniteLossError
from vae_gjs.io import atomic_open
from vae_gjs.module import build_module
from vae_gjs.rundir import COMPLETED, FAILED, RUNNING, RunDir

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file in the checkpoint's own folder, then rename: a kill
    mid-save leaves the previous checkpoint intact (Lightning's default writes through a
    temporary file in /tmp and *copies* it across devices, which is not atomic)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)


class EpochBookkeeping(Callback):
    """Logs wall seconds per epoch (``time/epoch_s``) and tells the CSV logger where a resumed
    run starts, so repeated epochs replace their rows instead of duplicating them."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            if hasattr(logger, "start_epoch"):
                logger.start_epoch(trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._started, on_epoch=True)


class RandomState(Callback):
    """Keeps the random number generators (torch CPU and CUDA, NumPy, Python) in every checkpoint
    and restores them when training resumes from one.

    Lightning restores weights, optimiser and loop counters but not the RNGs, so a resumed run
    would draw different reparameterisation noise than the uninterrupted run. With the states
    saved at the end of an epoch (last.ckpt) and put back just before the next epoch starts,
    a killed-and-resumed run continues bit-identically on CPU (shuffling is seeded by
    ``(seed, epoch)`` separately). Under DDP the states of rank 0 are saved. The states are
    plain tensors and numbers, so ``torch.load(weights_only=True)`` still reads the checkpoint.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict  # applied at on_train_start, after everything set-up draws

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._pending = self._pending, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if torch.cuda.is_available():  # as many devices as both runs have
            for device, cuda_state in enumerate(state.get("cuda", [])[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


def trainer_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """``cfg.trainer`` as ``lightning.Trainer`` arguments; unknown keys are a :class:`ConfigError`."""
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(kwargs, dict)
    allowed = set(inspect.signature(L.Trainer.__init__).parameters) - {
        "self",
        "logger",
        "callbacks",
        "plugins",
    }
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ConfigError(
            f"trainer.{unknown[0]} is not a lightning.Trainer argument; allowed: {', '.join(sorted(allowed))}"
        )
    return kwargs


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """Instantiate every logger of the chosen ``logger/`` config (``None`` ones are dropped)."""
    loggers = [instantiate(node) for node in cfg.logger.values()]
    return [logger for logger in loggers if logger is not None]


def resume_from(cfg: DictConfig, run: RunDir) -> str | None:
    """The checkpoint to resume from: ``ckpt_path`` (``last`` meaning this run's last.ckpt), or
    the run folder's last.ckpt when an unfinished run left one there."""
    if cfg.ckpt_path == "last":
        return str(run.checkpoint("last"))
    if cfg.ckpt_path is not None:
        return str(cfg.ckpt_path)
    if run.last_ckpt.is_file():
        log.info(f"Resuming the unfinished run in {run.path} from {run.last_ckpt.name}")
        return str(run.last_ckpt)
    return None


def _quiet_library_logs() -> None:
    """Let Hydra's handlers (console + the run's log file) print Lightning's messages once, and
    drop a deprecation warning Lightning raises from its own internals."""
    if logging.getLogger().handlers:
        lightning_logger = logging.getLogger("lightning")
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar without the logger's version number (W&B's run id, noise here)."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


def progress_bar() -> TQDMProgressBar:
    """A progress bar refreshed every step on a terminal, every 100 steps into a log file."""
    return ProgressBar(refresh_rate=1 if sys.stderr.isatty() else 100)


def _finish_wandb() -> None:
    """Close the W&B run so the next job of a sweep opens its own."""
    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()


def evaluate_after_training(cfg: DictConfig, run: RunDir) -> None:
    """Evaluate the run like ``evaluate.py run_dir=<run>`` with the options ``cfg.eval``
    (skipped when its eval.json is up to date)."""
    from vae_gjs.evaluation.runner import evaluate_run

    options = {**OmegaConf.to_container(cfg.eval, resolve=True), "data_dir": cfg.data_dir, "force": False}
    evaluate_run(run.path, OmegaConf.create(options))


def train(cfg: DictConfig, callbacks: Sequence[Callback] = ()) -> float | None:
    """Fit (or resume) the run described by ``cfg`` in ``cfg.run_dir``, test it, record results,
    and with ``evaluate=true`` evaluate it. ``callbacks`` are added to the Trainer's own.

    Returns the final test reconstruction error (``None`` with ``test=false``). A run folder
    whose status is ``completed`` is not trained again, so re-running a sweep only runs what is
    missing. Only the process of rank 0 writes into the run folder.
    """
    run = RunDir.at(cfg.run_dir)
    if run.status == COMPLETED:
        log.info(f"Skipping {run.path}: already completed (delete status.json to run it again)")
        if cfg.evaluate and rank_zero_only.rank == 0:
            evaluate_after_training(cfg, run)
        return run.results.get("test/rec")
    _quiet_library_logs()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # Build and check everything before writing to the run folder: a bad value or a checkpoint
    # that does not fit fails with the folder as it was (an unfinished run keeps its config.yaml
    # and status.json), instead of leaving a "running" status that nothing will update.
    kwargs = trainer_kwargs(cfg)
    datamodule: InMemoryDataModule = instantiate(cfg.dataset)
    module = build_module(cfg.module, datamodule.image_shape)
    if cfg.compile:
        module.net.compile()  # in place: the state_dict keeps its keys
    ckpt_path = resume_from(cfg, run)
    if ckpt_path is not None:
        check_fits(read_checkpoint(ckpt_path), module, ckpt_path, "the model of this config")
    loggers = build_loggers(cfg)
    monitor = "val/loss" if datamodule.has_val else "train/loss"
    checkpoints = ModelCheckpoint(
        dirpath=run.checkpoints,
        filename="best",
        monitor=monitor,
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    if not datamodule.has_val:
        kwargs.update(limit_val_batches=0, num_sanity_val_steps=0)
    trainer = L.Trainer(
        **kwargs,
        default_root_dir=str(run.path),
        logger=loggers or False,
        callbacks=[
            checkpoints,
            EpochBookkeeping(),
            RandomState(),
            *([progress_bar()] if kwargs.get("enable_progress_bar") else []),
            *callbacks,
        ],
        plugins=[AtomicCheckpointIO()],
    )

    writer = rank_zero_only.rank == 0
    if writer:
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(cfg)
        run.set_status(RUNNING, pid=os.getpid())
    started = time.perf_counter()
    try:
        hparams = OmegaConf.to_container(cfg, resolve=True)
        for logger in loggers:
            logger.log_hyperparams(hparams)  # type: ignore[arg-type]
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        fit_seconds = time.perf_counter() - started
        test = trainer.test(module, datamodule=datamodule, verbose=False)[0] if cfg.test else {}
    except NonFiniteLossError as error:
        saved = run.checkpoints / f"nonfinite-step{trainer.global_step}.ckpt"
        trainer.save_checkpoint(saved)
        if writer:
            run.set_status(FAILED, error=f"{error} (weights at that step: {saved.name})")
        raise
    except BaseException as error:
        if writer:
            run.set_status(FAILED, error=f"{type(error).__name__}: {error}")
        raise
    finally:
        _finish_wandb()

    results = {
        **{key: float(value) for key, value in test.items()},
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "fit_seconds_this_session": round(fit_seconds, 2),
        "best_checkpoint": Path(checkpoints.best_model_path).name if checkpoints.best_model_path else None,
    }
    if writer:
        run.write_results(results)
        run.set_status(COMPLETED)
        log.info(f"Finished {run.path}: " + ", ".join(f"{k}={v:.4g}" for k, v in test.items()))
        if cfg.evaluate:
            evaluate_after_training(cfg, run)
    return results.get("test/rec")
