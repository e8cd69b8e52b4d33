"""The task of evaluate.py: evaluate one run, every run of a sweep, or write a sweep's report."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from vae_gjs.evaluation.runner import evaluate_run
from vae_gjs.evaluation.sweep import evaluate_sweep
from vae_gjs.reports import write_report


def evaluate(cfg: DictConfig) -> Any:
    """``report=...``: evaluate the sweep's runs that lack an eval.json, then write the report;
    ``sweep_dir=...``: evaluate every run of the sweep; ``run_dir=...``: evaluate that run.
    The options are already validated (:func:`vae_gjs.config.validate_evaluate`)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.report is not None:
        evaluate_sweep(cfg.sweep_dir, cfg, for_report=True)
        return write_report(cfg.report, cfg.sweep_dir)
    if cfg.sweep_dir is not None:
        return evaluate_sweep(cfg.sweep_dir, cfg)
    return evaluate_run(cfg.run_dir, cfg)
