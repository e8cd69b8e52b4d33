"""An evaluation's numbers and images in W&B: a run of its own beside the training run (same
group), and the numbers also in the training run's summary."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.loggers import WANDB_ID_FILE, finish_wandb, wandb_logger
from vae_gjs.provenance import provenance
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def log_to_wandb(
    run: RunDir,
    run_cfg: DictConfig,
    options: dict[str, Any],
    metrics: dict[str, float],
    figures: dict[str, Path],
) -> None:
    """When the run's config has a W&B logger:

    * a W&B run of the same project and group, ``<run_name>-eval`` with ``job_type=eval`` and a
      fresh id, gets the numbers (``eval/...``, also in its summary) and the images at the
      training run's final step; its config is the training run's (hyperparameters) with the
      evaluation's ``options`` as ``eval``, ``training_run_id`` and ``provenance``;
    * the training run (reopened by its id, nothing logged to its history) gets the same
      ``eval/...`` numbers in its summary, so that a panel of the training runs can plot, say,
      ``eval/test/log_px`` against ``alpha``.

    Quiet (no W&B banner); the mode is the configured one (``auto`` goes offline without key or
    network). A failure here is a warning: eval.json is already written."""
    node = run_cfg.get("logger", {}).get("wandb") if isinstance(run_cfg.get("logger"), DictConfig) else None
    if node is None:
        return
    kwargs = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kwargs, dict)
    for key in ("_target_", "log_model", "job_type"):
        kwargs.pop(key, None)
    id_file = run.path / WANDB_ID_FILE
    training_id = id_file.read_text().strip() if id_file.is_file() else None
    hparams = OmegaConf.to_container(run_cfg, resolve=True)
    assert isinstance(hparams, dict)
    name = kwargs.pop("name", None) or run.path.name
    kwargs.update(save_dir=str(run.path), quiet=True)
    logged = {f"eval/{key}": value for key, value in metrics.items()}
    try:
        config = {**hparams, "eval": options, "training_run_id": training_id, "provenance": provenance()}
        logger = wandb_logger(**kwargs, name=f"{name}-eval", fresh_id=True, job_type="eval", config=config)
        if logger is None:
            return
        step = run.results.get("steps")
        logger.log_metrics(logged, step=step)
        logger.experiment.summary.update(logged)
        for figure, path in figures.items():
            logger.log_image(key=f"eval/{figure}", images=[str(path)], step=step)
        where = f"{logger.experiment.name} ({logger.experiment.id}, {logger.experiment.settings.mode})"
        finish_wandb()
        if training_id is not None:  # the folder's own id: the training run
            training = wandb_logger(**kwargs, name=name, job_type="train")
            assert training is not None
            training.experiment.summary.update(logged)
            where += f", and the summary of {name} ({training_id})"
        log.info(f"W&B: the evaluation went to {where}")
    except Exception as error:
        log.warning(f"W&B logging of the evaluation failed ({type(error).__name__}: {error}); see eval.json")
    finally:
        finish_wandb()
