"""An evaluation's numbers and images in its run's own W&B run."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vae_gjs.loggers import finish_wandb, wandb_logger
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def log_to_wandb(
    run: RunDir, run_cfg: DictConfig, metrics: dict[str, float], figures: dict[str, Path]
) -> None:
    """Add the numbers (``eval/...``, also to the summary) and images to the run's own W&B run,
    when its config has a W&B logger. The id derives from the run folder as in training; the
    mode is the configured one (``auto`` goes offline without key or network). A failure here
    is a warning: eval.json is already written."""
    node = run_cfg.get("logger", {}).get("wandb") if isinstance(run_cfg.get("logger"), DictConfig) else None
    if node is None:
        return
    kwargs = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kwargs, dict)
    kwargs.pop("_target_", None)
    kwargs["save_dir"] = str(run.path)
    try:
        logger = wandb_logger(**kwargs)
        if logger is None:
            return
        logged = {f"eval/{key}": value for key, value in metrics.items()}
        logger.log_metrics(logged)
        logger.experiment.summary.update(logged)
        for name, path in figures.items():
            logger.log_image(key=f"eval/{name}", images=[str(path)])
    except Exception as error:
        log.warning(f"W&B logging of the evaluation failed ({type(error).__name__}: {error}); see eval.json")
    finally:
        finish_wandb()
