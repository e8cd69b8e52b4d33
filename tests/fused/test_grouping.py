"""Which jobs fuse: equal configs up to the regulariser and the run's names, the same resume point."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.fused.conftest import member_config
from vae_gjs.fused.grouping import fusion_key, make_groups, unfusable_reason


def _resolved(tmp_path: Path, *overrides: str) -> dict:
    name = "_".join(overrides).replace("/", "-") or "default"
    container = OmegaConf.to_container(member_config(tmp_path / name, overrides))
    assert isinstance(container, dict)
    return container


def test_regulariser_and_names_fuse_everything_else_splits(tmp_path: Path) -> None:
    base = fusion_key(_resolved(tmp_path, "divergence=gjs", "alpha=0.2"), None)
    for fusable in (
        ("divergence=gjs", "alpha=0.7"),
        ("divergence=mmd_reference",),
        ("divergence=kl_qp", "lam=4"),
        ("divergence=dgjs", "logger=none", "evaluate=true"),
    ):
        assert fusion_key(_resolved(tmp_path, *fusable), None) == base, fusable
    for splitting in (
        "seed=7",
        "dataset.batch_size=32",
        "model.latent_dim=8",
        "optim.lr=0.001",
        "likelihood=bernoulli",
        "dataset=fmnist",
        "trainer.max_epochs=3",
    ):
        assert fusion_key(_resolved(tmp_path, "divergence=gjs", "alpha=0.2", splitting), None) != base, (
            splitting
        )
    assert fusion_key(_resolved(tmp_path, "divergence=gjs", "alpha=0.2"), (0, 938)) != base


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("dataset.val_size=100", "dataset.val_size > 0 (validation)"),
        ("compile=true", "compile=true"),
        ("learn_alpha=true", "learn_alpha=true (a trained divergence parameter)"),
        ("trainer.precision=16-mixed", "trainer.precision=16-mixed"),
        ("+trainer.gradient_clip_val=1.0", "trainer.gradient_clip_val is not supported by the fused engine"),
        (
            "+callbacks/early_stopping=default",
            "callbacks.early_stopping is not supported by the fused engine",
        ),
    ],
)
def test_what_the_engine_cannot_reproduce_runs_separately(tmp_path: Path, override: str, reason: str) -> None:
    assert unfusable_reason(_resolved(tmp_path)) is None
    assert unfusable_reason(_resolved(tmp_path, override)) == reason


def test_groups_keep_order_are_capped_and_fill_the_workers() -> None:
    keys = ["a", "b", "a", None, "a", "b", "a"]
    assert make_groups(keys, max_models=3) == [[0, 2], [4, 6], [1, 5], [3]]  # 4 a's: 2 + 2, not 3 + 1
    assert make_groups(keys, max_models=32) == [[0, 2, 4, 6], [1, 5], [3]]
    assert make_groups(keys, max_models=32, workers=4) == [[0, 2], [4, 6], [1, 5], [3]]
    assert make_groups(["a"] * 22, max_models=32, workers=2) == [list(range(11)), list(range(11, 22))]
    assert make_groups(["a", None], max_models=32, workers=8) == [[0], [1]]
