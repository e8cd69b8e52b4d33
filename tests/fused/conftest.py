"""Fused-sweep fixtures: resolved member configs on a small MNIST slice."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tests.conftest import DATA_DIR, TINY, compose_train

#: The issue's three members: the standard VAE, JS^{Gα} at α = 0.3, the authors' MMD (λ = 500).
THREE = (("divergence=kl_qp",), ("divergence=gjs", "alpha=0.3"), ("divergence=mmd_reference",))


def member_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``train.py``'s config of one run in ``run_dir``, resolved (a fused group holds several,
    and ``${hydra:...}`` values resolve against whichever job Hydra last set up)."""
    cfg = compose_train([*TINY, f"data_dir={DATA_DIR}", "threads=1", *overrides], run_dir=run_dir)
    OmegaConf.resolve(cfg)
    return cfg
