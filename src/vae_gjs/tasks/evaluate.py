"""The task of evaluate.py: evaluate one run, every run of a sweep, or write a sweep's report.
A report of evaluated runs reads run folders alone: torch and Lightning are imported only where a
model is loaded (evaluating a run, Figure 4's traversals), so such a report takes seconds."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vae_gjs.config import LOG_REPORTS
from vae_gjs.config.evaluate import evidence_likelihoods
from vae_gjs.console import quiet_library_logs
from vae_gjs.errors import RunError
from vae_gjs.evaluation.sweep import evaluate_sweep
from vae_gjs.hardware import use_threads
from vae_gjs.reports import check_report, figure4, figure4_runs, write_report
from vae_gjs.reports.publish import publish
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> Any:
    """``report=...``: evaluate the sweep's runs that lack an eval.json (not for a report of the
    training logs, :data:`~vae_gjs.config.LOG_REPORTS`), then write the report;
    ``sweep_dir=...``: evaluate every run of the sweep; ``run_dir=...``: evaluate that run.
    The options are already validated (:func:`vae_gjs.config.validate_evaluate`)."""
    quiet_library_logs()
    use_threads(cfg.threads)
    if cfg.report is not None:
        if Path(cfg.sweep_dir).is_dir():  # else evaluate_sweep names what the folder is not
            check_report(cfg.report, cfg.sweep_dir)  # before evaluating anything
        if cfg.report not in LOG_REPORTS:
            evaluate_sweep(cfg.sweep_dir, cfg, for_report=True)
        if cfg.report == "fig4":
            return [write_figure4(cfg)]
        chosen = cfg.get("evidence_likelihood")
        likelihoods = [] if chosen is None else evidence_likelihoods(chosen, "")
        return write_report(cfg.report, cfg.sweep_dir, likelihoods, cfg.get("table1_dir"))
    if cfg.sweep_dir is not None:
        return evaluate_sweep(cfg.sweep_dir, cfg)
    from vae_gjs.evaluation.runner import evaluate_run

    return evaluate_run(cfg.run_dir, cfg)


def write_figure4(cfg: DictConfig) -> Path:
    """``<sweep_dir>/reports/fig4.png``: the panels (:func:`model_panel`) of the models
    :func:`vae_gjs.reports.figure4_runs` picks from the sweep."""
    from vae_gjs.evaluation.figure4 import model_panel
    from vae_gjs.hardware import choose_device

    records = check_report("fig4", cfg.sweep_dir)
    chosen = figure4_runs(records)
    if not chosen:
        raise RunError(f"{cfg.sweep_dir}: no finished and evaluated run of KL, MMD, gjs or dgjs for Figure 4")
    device = choose_device("device", cfg.device)
    panels = []
    for label, record in chosen:
        kl_per_dim = json.loads(RunDir.at(record.path).eval_file.read_text())["kl_per_dim"]["test"]
        panels.append(
            model_panel(
                label,
                record.path,
                cfg.data_dir,
                kl_per_dim,
                5,
                cfg.traversal_image,
                cfg.traversal_range,
                device,
            )
        )
    extent = cfg.traversal_range
    path = figure4(
        panels,
        Path(cfg.sweep_dir) / "reports" / "fig4.png",
        title=f"Figure 4 ({records[0].dataset}, budget {records[0].budget}): traversals of the 5 latent "
        f"dimensions of highest test KL, z_d from {-extent:g} to {extent:g}",
        extent=extent,
    )
    log.info(f"Wrote {path}")
    publish("fig4", cfg.sweep_dir, [path])
    return path
