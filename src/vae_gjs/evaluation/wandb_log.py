"""An evaluation's numbers and images in a W&B run beside its training run (same group)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae_gjs.loggers import WANDB_ID_FILE, finish_wandb, wandb_logger
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def log_to_wandb(
    run: RunDir, run_cfg: DictConfig, metrics: dict[str, float], figures: dict[str, Path]
) -> None:
    """When the run's config has a W&B logger, log the numbers (``eval/...``, also to the
    summary) and images into a separate W&B run of the same project and group, named
    ``<run_name>-eval`` with ``job_type=eval`` and a fresh id; its config names the training
    run's id (``training_run_id``) and its step is the training run's final step. (Re-opening the
    training run would log at step 0 under its id a second time.) The mode is the configured
    one (``auto`` goes offline without key or network). A failure here is a warning: eval.json
    is already written."""
    node = run_cfg.get("logger", {}).get("wandb") if isinstance(run_cfg.get("logger"), DictConfig) else None
    if node is None:
        return
    kwargs = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kwargs, dict)
    kwargs.pop("_target_", None)
    id_file = run.path / WANDB_ID_FILE
    kwargs.update(
        save_dir=str(run.path),
        name=f"{kwargs.get('name') or run.path.name}-eval",
        fresh_id=True,
        job_type="eval",
        config={"training_run_id": id_file.read_text().strip() if id_file.is_file() else None},
    )
    try:
        logger = wandb_logger(**kwargs)
        if logger is None:
            return
        logged = {f"eval/{key}": value for key, value in metrics.items()}
        step = run.results.get("steps")
        logger.log_metrics(logged, step=step)
        logger.experiment.summary.update(logged)
        for name, path in figures.items():
            logger.log_image(key=f"eval/{name}", images=[str(path)], step=step)
    except Exception as error:
        log.warning(f"W&B logging of the evaluation failed ({type(error).__name__}: {error}); see eval.json")
    finally:
        finish_wandb()
