"""What a running task asks of its config (after validation): the config as a run records it,
what it was trained with besides its seed (its setting, which the runs a report shows together
must share), the hyperparameters its loggers get, and the batches of an epoch under
``trainer.limit_*_batches``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.config.keys import ADDED_AS, MAY_CHANGE, MUST_KEEP, REPORT_MAY_DIFFER, flat, under
from vae_gjs.errors import ConfigError
from vae_gjs.provenance import provenance


def recorded_container(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` resolved into plain containers, as a run records it (config.yaml, the loggers'
    hyperparameters), with ``alpha: null`` when the divergence has no skew: a dashboard's α axis
    must not put KL(q‖p), KL(p‖q), β-VAE or MMD runs at the unused default 0.5."""
    recorded = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(recorded, dict)
    if "alpha" not in recorded["divergence"]:
        recorded["alpha"] = None
    return recorded  # type: ignore[return-value]


def recorded_config(cfg: DictConfig) -> DictConfig:
    """:func:`recorded_container` as a config."""
    return OmegaConf.create(recorded_container(cfg))


def run_setting(config: dict[str, Any]) -> dict[str, Any]:
    """What a run was trained with besides its seed, from its recorded config (plain containers):
    every key a resumed run must keep (:data:`~vae_gjs.config.keys.MUST_KEEP`, less ``MAY_CHANGE``)
    other than :data:`~vae_gjs.config.keys.REPORT_MAY_DIFFER`, by key path; a key the project's
    older versions did not write holds the value they trained with
    (:data:`~vae_gjs.config.keys.ADDED_AS`)."""
    setting = {
        key: value
        for key, value in flat(config).items()
        if under(key, MUST_KEEP) and not under(key, (*MAY_CHANGE, *REPORT_MAY_DIFFER))
    }
    return {**{k: v for k, v in ADDED_AS.items() if not under(k, REPORT_MAY_DIFFER)}, **setting}


def setting_text(value: Any) -> str:
    """A setting's value as the text runs are grouped by: a whole number without a decimal point,
    so that ``lam=1`` typed on a command line and the config's ``lam: 1.0`` are one value, as
    they are to a resume."""
    whole = isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    return str(int(value) if whole else value)


def setting_digest(setting: dict[str, Any]) -> str:
    """A short fingerprint of a whole :func:`run_setting`: two settings share it exactly when every
    key's :func:`setting_text` agrees (what a sweep's plan keeps of a job, ``jobs.json``)."""
    text = json.dumps({key: setting_text(value) for key, value in setting.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def planned_setting(cfg: DictConfig) -> str:
    """:func:`setting_digest` of the run that the composed task config ``cfg`` will train, as the
    run will record it (:func:`recorded_container`)."""
    return setting_digest(run_setting(recorded_container(cfg)))


def logged_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """What a run gives its loggers as hyperparameters (the W&B config): its config as recorded
    (:func:`recorded_container`) and, under ``provenance``, the git commit and package versions."""
    return {**recorded_container(cfg), "provenance": provenance()}


def limited_batches(key: str, batches: int, limit: Any) -> int:
    """The batches of an epoch of ``batches`` under Lightning's ``limit_*_batches`` option ``key``
    (an int caps, a float is a fraction, null is all). A fraction that leaves no batch is a
    :class:`ConfigError` (Lightning refuses it in the middle of ``fit``); 0 or 0.0 is no batch."""
    if limit is None:
        return batches
    if isinstance(limit, int):
        return min(batches, limit)
    limited = int(batches * limit)
    if limited == 0 and limit > 0:
        raise ConfigError(
            f"{key}={limit!r} leaves no batch of the {batches} ({limit!r} x {batches} < 1); allowed: 0 "
            f"(none), a fraction >= {1 / batches:.2g} or a number of batches >= 1"
        )
    return limited
