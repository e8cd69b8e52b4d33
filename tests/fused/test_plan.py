"""Which jobs fuse: equal configs up to the regulariser and the run's names, the same resume point."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.fused.conftest import member_config
from vae_gjs.fused.plan import Workers, choose_workers, fusion_key, make_groups, unfusable_reason


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
        ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 (no training)"),
        ("trainer.limit_train_batches=0.0", "trainer.limit_train_batches=0 (no training)"),
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


@pytest.mark.parametrize(
    ("n_jobs", "jobs", "cores", "devices", "threads", "expected"),
    [
        # the default on a CPU: one single-threaded worker per usable core, the groups split among them
        (None, 9, 2, 0, None, Workers(2, 1)),
        (None, 22, 16, 0, None, Workers(16, 1)),
        (None, 1, 16, 0, None, Workers(1, None)),  # one job: one worker with torch's threads
        (None, 9, 4, 0, 2, Workers(2, 2)),  # jobs of threads=2: a worker per two cores
        # on GPUs: one group per device
        (None, 22, 16, 1, None, Workers(1, None)),
        (None, 22, 16, 2, None, Workers(2, None)),
        # a given n_jobs: -1 is a worker per core; a larger one is capped, with one line
        (-1, 9, 2, 0, None, Workers(2, 1)),
        (1, 9, 2, 0, None, Workers(1, None)),
        (
            999,
            2,
            2,
            0,
            None,
            Workers(
                2,
                1,
                "hydra.launcher.n_jobs=999 is more than the 2 usable CPU cores and the 2 jobs; "
                "using n_jobs=2",
            ),
        ),
        (
            4,
            3,
            8,
            0,
            None,
            Workers(3, 2, "hydra.launcher.n_jobs=4 is more than the 3 jobs; using n_jobs=3"),
        ),
        (2, 22, 16, 1, None, Workers(2, None)),  # two groups on one GPU, as the user asked
    ],
)
def test_workers_are_chosen_for_the_machine_and_capped(
    n_jobs: int | None, jobs: int, cores: int, devices: int, threads: int | None, expected: Workers
) -> None:
    assert choose_workers(n_jobs, jobs, cores, devices, threads) == expected


def test_a_job_whose_folder_cannot_be_read_runs_separately(tmp_path: Path) -> None:
    """A corrupt status.json (or checkpoint) of one job used to end the whole fused sweep with a
    traceback while planning; the job now runs alone and fails with the one line naming it."""
    from vae_gjs.fused.plan import plan

    cfgs = [member_config(tmp_path / f"m{i}", ["divergence=gjs", f"alpha=0.{i + 2}"]) for i in range(3)]
    (tmp_path / "m0").mkdir()
    (tmp_path / "m0" / "status.json").write_text('{"status": "runn')
    assert plan(cfgs, max_models=32) == [[1, 2], [0]]
