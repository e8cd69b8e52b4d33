"""What a running task asks of its config (after validation): the config as a run records it,
the hyperparameters its loggers get, and the batches of an epoch under ``trainer.limit_*_batches``."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.errors import ConfigError
from vae_gjs.provenance import provenance


def recorded_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` resolved, as a run records it (config.yaml, the loggers' hyperparameters), with
    ``alpha: null`` when the divergence has no skew: a dashboard's α axis must not put KL(q‖p),
    KL(p‖q), β-VAE or MMD runs at the unused default 0.5."""
    recorded = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if "alpha" not in recorded.divergence:
        recorded.alpha = None
    return recorded


def logged_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """What a run gives its loggers as hyperparameters (the W&B config): its config as recorded
    (:func:`recorded_config`) and, under ``provenance``, the git commit and package versions."""
    hparams = OmegaConf.to_container(recorded_config(cfg))
    assert isinstance(hparams, dict)
    return {**hparams, "provenance": provenance()}


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
