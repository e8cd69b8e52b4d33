"""The ``vae_gjs.*`` resolvers of ``conf/``: a run's readable name, its W&B group, a sweep job's
folder, the loss that checkpoints watch, the data folder and budget=cpu's precision."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.config.names import DEFAULT_LATENT_DIM, DEFAULT_LR, DEFAULT_SEED
from vae_gjs.datadir import default_data_dir
from vae_gjs.hardware import fastest_cpu_precision


def run_name(
    dataset: str,
    divergence: str,
    divergence_cfg: Any,
    lam: Any,
    seed: Any,
    latent_dim: Any = DEFAULT_LATENT_DIM,
    lr: Any = DEFAULT_LR,
) -> str:
    """A readable run name naming what differs from the defaults, e.g. ``mnist-gjs-a0.2``,
    ``fmnist-beta_vae-l4`` or ``mnist-kl_qp-s7-z32-lr0.0003``."""
    name = f"{dataset}-{divergence}"
    if isinstance(divergence_cfg, DictConfig) and "alpha" in divergence_cfg:
        name += f"-a{divergence_cfg.alpha:g}" if isinstance(divergence_cfg.alpha, (int, float)) else ""
        name += "-learned" if divergence_cfg.get("learn_alpha") is True else ""
    for prefix, value, default in (
        ("l", lam, 1),
        ("s", seed, DEFAULT_SEED),
        ("z", latent_dim, DEFAULT_LATENT_DIM),
    ):
        if isinstance(value, (int, float)) and value != default:
            name += f"-{prefix}{value:g}"
    if isinstance(lr, (int, float)) and not math.isclose(lr, DEFAULT_LR):
        name += f"-lr{lr:g}"
    return name


def group_name(mode: Any, sweep_dir: str) -> str:
    """The W&B group of a run: its sweep folder for ``-m`` runs, ``single`` otherwise."""
    if "MULTIRUN" not in str(mode):
        return "single"
    return re.sub(r"[^\w.=-]+", "-", str(sweep_dir)).strip("-")[-120:]


#: The longest name of a folder most file systems take, in bytes (``NAME_MAX``).
NAME_MAX = 255


def sweep_subdir(override_dirname: str, job_num: Any) -> str:
    """A job's folder inside a sweep: its overrides (``alpha=0.3``), or ``job<N>`` if it has none.
    A name longer than :data:`NAME_MAX` bytes (a fused sweep with ``evaluate=true`` and a few
    ``eval.*`` overrides reaches it) keeps its beginning and ends with a digest of the whole, so
    the same job gets the same folder again (a re-run resumes it)."""
    name = override_dirname.replace("/", "_") if override_dirname else f"job{job_num}"
    encoded = name.encode()
    if len(encoded) <= NAME_MAX:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    return f"{encoded[: NAME_MAX - len(digest) - 1].decode(errors='ignore')}~{digest}"


def monitor(val_size: Any) -> str:
    """The loss that checkpoints and early stopping watch: ``val/loss`` when the run holds out a
    validation split (``dataset.val_size > 0``), else ``train/loss``."""
    return "val/loss" if isinstance(val_size, int) and val_size > 0 else "train/loss"


def register_resolvers() -> None:
    """Register the ``vae_gjs.*`` resolvers used in ``conf/`` (idempotent)."""
    resolvers = (
        ("run_name", run_name),
        ("group", group_name),
        ("subdir", sweep_subdir),
        ("data_dir", default_data_dir),
        ("monitor", monitor),
        ("cpu_precision", fastest_cpu_precision),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(f"vae_gjs.{name}"):
            OmegaConf.register_new_resolver(f"vae_gjs.{name}", fn)
