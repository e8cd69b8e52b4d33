"""The options of ``evaluate.py`` (conf/evaluate.yaml) and the cheap checks of a run folder, done
before torch or Lightning load, so bad values and bad folders answer at once."""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, ListConfig

from vae_gjs.errors import ConfigError, RunError, check_choice, check_positive_int, check_positive_real
from vae_gjs.reports import REPORTS
from vae_gjs.rundir import RunDir

#: The ``config_version`` of conf/train.yaml this evaluation reads.
CONFIG_VERSION = 1
CHECKPOINTS = ("best", "last")
SPLITS = ("test", "train", "val")
#: Keys of conf/evaluate.yaml that change the numbers or pictures of an evaluation: a run whose
#: eval.json was written with the same values (and the same checkpoint file) is done.
RESULT_KEYS = (
    "checkpoint",
    "splits",
    "rec_batches",
    "k",
    "n_batches",
    "batch_size",
    "bootstrap",
    "seed",
    "figures",
    "traversal_range",
    "traversal_image",
)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: an integer >= {minimum}")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: true or false")
    return value


def validate_eval_options(opts: DictConfig) -> None:
    """Raise a one-line :class:`ConfigError` for a bad evaluation option (conf/eval/default.yaml),
    whether it comes from evaluate.py (top-level keys) or from train.py (``eval.*``)."""
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
    _check_int("seed", opts.seed, 0)
    _check_int("traversal_image", opts.traversal_image, 0)
    check_positive_real("traversal_range", opts.traversal_range)
    device = opts.device
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device={device!r} is unknown; allowed: auto, cpu, cuda, cuda:<index>")
    if opts.rec_batches is not None:
        check_positive_int("rec_batches", opts.rec_batches)
    if opts.threads is not None:
        check_positive_int("threads", opts.threads)
    _check_bool("figures", opts.figures)


def validate_options(cfg: DictConfig) -> None:
    """Raise a one-line :class:`ConfigError` for a bad value of conf/evaluate.yaml."""
    if cfg.get("report") is not None:
        check_choice("report", cfg.report, REPORTS)
        if cfg.get("sweep_dir") is None:
            raise ConfigError(f"report={cfg.report} needs sweep_dir=<folder of run folders>")
    if (cfg.get("run_dir") is None) == (cfg.get("sweep_dir") is None):
        raise ConfigError(
            "give exactly one of run_dir=<run folder> or sweep_dir=<folder of run folders>, "
            "e.g. `python evaluate.py run_dir=outputs/mnist-kl_qp/2026-01-01_12-00-00`"
        )
    validate_eval_options(cfg)
    _check_bool("force", cfg.force)


def load_run_config(run: RunDir) -> DictConfig:
    """The run's config.yaml, or a :class:`RunError` for a folder that is not a run or whose
    config comes from another version of train.py."""
    cfg = run.load_config()
    version = cfg.get("config_version")
    if version != CONFIG_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > CONFIG_VERSION
        found = "has no config_version" if version is None else f"has config_version={version!r}"
        raise RunError(
            f"{run.path}: config from {'a newer' if newer else 'an older'} version of vae-gjs "
            f"(config.yaml {found}; this evaluate.py reads config_version={CONFIG_VERSION}); "
            + ("update vae-gjs" if newer else "retrain the run with the current train.py")
        )
    return cfg


def main(cfg: DictConfig) -> Any:
    """Validate the options (and a single run folder), then import the evaluation and run it."""
    validate_options(cfg)
    if cfg.run_dir is not None:
        run = RunDir.at(cfg.run_dir)
        load_run_config(run)
        run.checkpoint(cfg.checkpoint)
    from vae_gjs.evaluation.runner import evaluate

    return evaluate(cfg)
