"""Fused-sweep fixtures: resolved member configs on a small MNIST slice."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from tests.conftest import DATA_DIR, TINY, compose_train
from vae_gjs.fused import group
from vae_gjs.fused.engine import FusedEngine

#: The issue's three members: the standard VAE, JS^{Gα} at α = 0.3, the authors' MMD (λ = 500).
THREE = (("divergence=kl_qp",), ("divergence=gjs", "alpha=0.3"), ("divergence=mmd_reference",))


def member_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """``train.py``'s config of one run in ``run_dir``, resolved (a fused group holds several,
    and ``${hydra:...}`` values resolve against whichever job Hydra last set up)."""
    cfg = compose_train([*TINY, f"data_dir={DATA_DIR}", "threads=1", *overrides], run_dir=run_dir)
    OmegaConf.resolve(cfg)
    return cfg


@pytest.fixture(params=[False, True], ids=["member_by_member", "batched"])
def batched(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Groups built in the test run their layers member by member (a CPU's default) or batched
    with ``vmap`` (a GPU's default): both ways must keep the contract."""
    monkeypatch.setattr(group, "FusedEngine", functools.partial(FusedEngine, batched=request.param))
    return request.param
