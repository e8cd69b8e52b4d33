"""Configuration helpers that run before anything heavy is imported: resolvers and validation."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.errors import (
    ConfigError,
    check_choice,
    check_in_unit_interval,
    check_non_negative,
    check_positive_int,
    check_positive_real,
)
from vae_gjs.evaluation.options import validate_eval_options

LIKELIHOODS = ("gaussian", "bernoulli")
log = logging.getLogger(__name__)


def run_name(dataset: str, divergence: str, divergence_cfg: Any, lam: Any, seed: Any) -> str:
    """A readable run name, e.g. ``mnist-gjs-a0.2`` or ``fmnist-beta_vae-l4``."""
    name = f"{dataset}-{divergence}"
    if isinstance(divergence_cfg, DictConfig) and "alpha" in divergence_cfg:
        name += f"-a{divergence_cfg.alpha:g}" if isinstance(divergence_cfg.alpha, (int, float)) else ""
    if isinstance(lam, (int, float)) and lam != 1:
        name += f"-l{lam:g}"
    return name


def group_name(mode: Any, sweep_dir: str) -> str:
    """The W&B group of a run: its sweep folder for ``-m`` runs, ``single`` otherwise."""
    if "MULTIRUN" not in str(mode):
        return "single"
    return re.sub(r"[^\w.=-]+", "-", str(sweep_dir)).strip("-")[-120:]


def sweep_subdir(override_dirname: str, job_num: Any) -> str:
    """A job's folder inside a sweep: its overrides (``alpha=0.3``), or ``job<N>`` if it has none."""
    return override_dirname.replace("/", "_") if override_dirname else f"job{job_num}"


def default_data_dir() -> str:
    """``data_dir``'s default (:func:`vae_gjs.data.files.default_data_dir`), imported only when a
    config resolves it: the data package imports Lightning, which ``--help`` must not wait for."""
    from vae_gjs.data.files import default_data_dir as find

    return find()


def register_resolvers() -> None:
    """Register the ``vae_gjs.*`` resolvers used in ``conf/`` (idempotent)."""
    resolvers = (
        ("run_name", run_name),
        ("group", group_name),
        ("subdir", sweep_subdir),
        ("data_dir", default_data_dir),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(f"vae_gjs.{name}"):
            OmegaConf.register_new_resolver(f"vae_gjs.{name}", fn)


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as error:  # interpolation or missing-value errors from OmegaConf
        raise ConfigError(f"{key}: {error}") from error


def unused_alpha(cfg: DictConfig) -> str | None:
    """A warning when ``alpha`` was set on the command line but the divergence has no α (e.g.
    ``python train.py -m alpha=range(0.1,1,0.1)`` with the default ``kl_qp``: 9 identical runs)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or "alpha" in _get(cfg, "divergence"):
        return None
    hydra_cfg = HydraConfig.get()
    if not any(o.split("=", 1)[0].lstrip("+~") == "alpha" for o in hydra_cfg.overrides.task):
        return None
    choice = hydra_cfg.runtime.choices.get("divergence")
    return (
        f"alpha={_get(cfg, 'alpha')} has no effect with divergence={choice}, which has no skew; "
        "alpha is used by divergence=gjs and divergence=dgjs"
    )


def validate(cfg: DictConfig) -> None:
    """Check every value a user is likely to get wrong; raise a one-line :class:`ConfigError`.
    Values that are valid but have no effect (:func:`unused_alpha`) are logged as warnings.

    Runs before Lightning is imported, so a bad value fails in about a second.
    """
    check_in_unit_interval("alpha", _get(cfg, "alpha"))
    check_non_negative("lam", _get(cfg, "lam"))
    seed = _get(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} is not an integer; allowed: an integer")
    check_choice("likelihood", _get(cfg, "likelihood"), LIKELIHOODS)
    check_positive_real("optim.lr", _get(cfg, "optim.lr"))
    check_positive_int("model.latent_dim", _get(cfg, "model.latent_dim"))
    check_positive_int("dataset.batch_size", _get(cfg, "dataset.batch_size"))
    check_positive_int("dataset.eval_batch_size", _get(cfg, "dataset.eval_batch_size"))
    val_size = _get(cfg, "dataset.val_size")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 0:
        raise ConfigError(f"dataset.val_size={val_size!r} is not allowed; allowed: an integer >= 0")
    threads = _get(cfg, "threads")
    if threads is not None:
        check_positive_int("threads", threads)
    for group in ("dataset", "divergence", "model"):
        if "_target_" not in _get(cfg, group):
            raise ConfigError(f"{group} has no _target_; choose one of the configs in conf/{group}/")
    for flag in ("test", "evaluate", "compile"):
        if not isinstance(_get(cfg, flag), bool):
            raise ConfigError(f"{flag}={_get(cfg, flag)!r} is not allowed; allowed: true or false")
    validate_eval_options(_get(cfg, "eval"))
    ckpt = _get(cfg, "ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise ConfigError(f"ckpt_path={ckpt!r} does not exist; allowed: null, 'last' or a checkpoint file")
    warning = unused_alpha(cfg)
    if warning:
        log.warning(warning)
