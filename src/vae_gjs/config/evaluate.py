"""Validation of evaluate.py's config (conf/evaluate.yaml) and of the evaluation options it shares
with train.py's ``eval.*`` (conf/eval/default.yaml): one-line :class:`~vae_gjs.errors.ConfigError`."""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, ListConfig

from vae_gjs.config.names import CHECKPOINTS, LIKELIHOODS, PRECISIONS, REPORTS, SPLITS
from vae_gjs.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_positive_int,
    check_positive_real,
)
from vae_gjs.rundir import RunDir, load_run_config


def validate_eval_options(opts: DictConfig) -> None:
    """Check the evaluation options of conf/eval/default.yaml, whether they come from
    evaluate.py (top-level keys) or from train.py (``eval.*``)."""
    check_choice("checkpoint", opts.checkpoint, CHECKPOINTS)
    splits = opts.splits
    if not isinstance(splits, (list, ListConfig)):
        raise ConfigError(
            f"splits={splits!r} is not a list; allowed: a list of {', '.join(SPLITS)}, e.g. [train,test]"
        )
    for split in splits:
        check_choice("splits", split, SPLITS)
    for name in ("k", "n_batches", "batch_size", "bootstrap"):
        check_positive_int(name, opts[name])
    check_int("seed", opts.seed, 0)
    check_int("traversal_image", opts.traversal_image, 0)
    check_positive_real("traversal_range", opts.traversal_range)
    device = opts.device
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device={device!r} is unknown; allowed: auto, cpu, cuda, cuda:<index>")
    if opts.rec_batches is not None:
        check_positive_int("rec_batches", opts.rec_batches)
    if opts.threads is not None:
        check_positive_int("threads", opts.threads)
    check_bool("figures", opts.figures)
    check_choice("precision", opts.precision, PRECISIONS)
    evidence_likelihoods(opts.get("evidence_likelihood"), LIKELIHOODS[0])


def evidence_likelihoods(option: Any, own: str) -> list[str]:
    """The decoder likelihoods of ``evidence_likelihood``: null is the run's ``own`` training
    likelihood, a name is that one, a list is each (the first is the headline ``test/log_px``)."""
    if option is None:
        return [own]
    names = [option] if isinstance(option, str) else list(option)
    if not names:
        raise ConfigError(
            "evidence_likelihood=[] is empty; allowed: null, gaussian, bernoulli or a list of them"
        )
    for name in names:
        check_choice("evidence_likelihood", name, LIKELIHOODS)
    return list(dict.fromkeys(names))


def validate_evaluate(cfg: DictConfig) -> None:
    """Check evaluate.py's config (conf/evaluate.yaml) and, for one run, its folder: a config of
    this version and the chosen checkpoint (cheap checks, before torch loads)."""
    if cfg.get("report") is not None:
        check_choice("report", cfg.report, REPORTS)
        if cfg.get("sweep_dir") is None:
            raise ConfigError(f"report={cfg.report} needs sweep_dir=<folder of run folders>")
    if cfg.get("table1_dir") is not None and cfg.get("report") not in ("learned_alpha", "likelihood"):
        raise ConfigError(
            f"table1_dir={cfg.table1_dir} is only used by report=learned_alpha and report=likelihood; "
            f"allowed with report={cfg.get('report')}: table1_dir=null"
        )
    if (cfg.get("run_dir") is None) == (cfg.get("sweep_dir") is None):
        raise ConfigError(
            "give exactly one of run_dir=<run folder> or sweep_dir=<folder of run folders>, "
            "e.g. `python evaluate.py run_dir=outputs/mnist-gjs-a0.5/2026-01-01_12-00-00`"
        )
    validate_eval_options(cfg)
    check_bool("force", cfg.force)
    if cfg.run_dir is not None:
        run = RunDir.at(cfg.run_dir)
        load_run_config(run)
        run.checkpoint(cfg.checkpoint)
