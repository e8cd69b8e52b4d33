"""A report's figure or table in the sweep's W&B group (``evaluate.py report=...`` with W&B on).

The reports themselves are built from run folders alone; this only sends the finished files to
W&B, so the dashboard of a sweep shows the paper's figures and Table 1 next to its runs.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vae_gjs.errors import RunError
from vae_gjs.loggers import finish_wandb, wandb_logger
from vae_gjs.rundir import RunDir, run_folders

log = logging.getLogger(__name__)

#: The keys of a run's ``logger.wandb`` config that place a report beside the runs.
SETTINGS = ("project", "group", "mode", "tags")


def wandb_settings(sweep_dir: str | Path) -> dict[str, Any] | None:
    """Project, group, mode and tags of the sweep's W&B logging, from the first run folder whose
    config.yaml has a W&B logger (a corrupt config.yaml is passed over: the report already
    listed it); ``None`` when no run logged to W&B."""
    for folder in run_folders(sweep_dir):
        try:
            cfg = RunDir.at(folder).load_config()
        except RunError:
            continue
        node = OmegaConf.select(cfg, "logger.wandb")
        if node is not None:
            settings = OmegaConf.to_container(node, resolve=True)
            assert isinstance(settings, dict)
            return {key: settings[key] for key in SETTINGS if key in settings}
    return None


def _cell(text: str) -> float | str | None:
    """A CSV cell as a W&B table value: a number, text, or ``None`` for a missing value (—)."""
    if text in ("", "—"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def publish(report: str, sweep_dir: str | Path, paths: list[Path]) -> None:
    """Log the files of ``report`` into the sweep's W&B group as a run ``<group>-<report>``
    (``job_type=report``, a fresh id, files under ``<sweep_dir>/reports/wandb``): PNGs as images,
    the CSV as a ``wandb.Table``, both under ``report/<report>``. Nothing without W&B; a failure
    is a warning (the report files are written)."""
    settings = wandb_settings(sweep_dir)
    if settings is None:
        return
    key = f"report/{report}"
    try:
        logger = wandb_logger(
            save_dir=str(Path(sweep_dir) / "reports"),
            name=f"{settings.get('group') or Path(sweep_dir).name}-{report}",
            fresh_id=True,
            job_type="report",
            **settings,
        )
        if logger is None:
            return
        for path in paths:
            if path.suffix == ".png":
                logger.log_image(key=key, images=[str(path)])
            elif path.suffix == ".csv":
                with path.open(newline="") as handle:
                    columns, *rows = list(csv.reader(handle))
                logger.log_table(key=key, columns=columns, data=[[_cell(c) for c in row] for row in rows])
        log.info(f"Logged {report} to W&B group {settings.get('group')!r} (run {logger.experiment.name})")
    except Exception as error:
        log.warning(
            f"W&B logging of {report} failed ({type(error).__name__}: {error}); see {paths[0].parent}"
        )
    finally:
        finish_wandb()
