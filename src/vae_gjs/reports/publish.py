"""A report's figure or table in the sweep's W&B group (``evaluate.py report=...`` with W&B on).

The reports themselves are built from run folders alone; this only sends the finished files to
W&B, so the dashboard of a sweep shows the paper's figures and Table 1 next to its runs.
Lightning and wandb are imported only when the sweep's runs logged to W&B.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vae_gjs.errors import RunError
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


def table_values(rows: list[list[str]]) -> list[list[float | str | None]]:
    """CSV cells as W&B table values, typed by column: a column whose every filled cell is a
    number holds floats, any other column text; an empty cell or — is ``None``. (W&B fixes a
    column's type from its first values, so a ``seeds`` column of ``1234`` beside ``1 2 1234``
    must stay text throughout.)"""

    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    missing = ("", "—")
    numeric = [all(number(c) for c in column if c not in missing) for column in zip(*rows, strict=True)]

    def value(text: str, is_number: bool) -> float | str | None:
        return None if text in missing else float(text) if is_number else text

    return [[value(c, n) for c, n in zip(row, numeric, strict=True)] for row in rows]


def publish(report: str, sweep_dir: str | Path, paths: list[Path]) -> None:
    """Log the files of ``report`` into the sweep's W&B group as a run ``<group>-<report>``
    (``job_type=report``, a fresh id, files under ``<sweep_dir>/reports/wandb``): PNGs as images,
    the CSV as a ``wandb.Table``, both under ``report/<report>``. Nothing without W&B; a failure
    is a warning (the report files are written)."""
    settings = wandb_settings(sweep_dir)
    if settings is None:
        return
    from vae_gjs.loggers import finish_wandb, wandb_logger

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
                logger.log_table(key=key, columns=columns, data=table_values(rows))
        log.info(f"Logged {report} to W&B group {settings.get('group')!r} (run {logger.experiment.name})")
    except Exception as error:
        log.warning(
            f"W&B logging of {report} failed ({type(error).__name__}: {error}); see {paths[0].parent}"
        )
    finally:
        finish_wandb()
