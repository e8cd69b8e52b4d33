"""debug=fdr|overfit|limit (conf/debug/): quick runs that are never taken for the real run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import compose_train, run_script, train_tiny
from vae_gjs.reports.collect import read_run
from vae_gjs.rundir import read_metrics

pytestmark = pytest.mark.slow


def _status(run_dir: Path) -> str:
    return json.loads((run_dir / "status.json").read_text())["status"]


def test_fdr_runs_one_batch_end_to_end_and_is_marked_debug(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script("train.py", "debug=fdr", f"hydra.run.dir={run_dir}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _status(run_dir) == "debug"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["steps"] == 1 and results["test/rec"] > 0
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == [
        f"epoch_001_{name}.png" for name in ("reconstructions", "samples", "traversals")
    ]
    assert not (run_dir / "wandb").exists()  # debug runs log to metrics.csv only, never to W&B
    assert read_run(run_dir).finished is False  # reports do not take it for a result

    # a real run started in that folder is not skipped and does not resume from the debug run
    train_tiny(run_dir, ["threads=1"])
    assert _status(run_dir) == "completed"
    assert json.loads((run_dir / "results.json").read_text())["steps"] == 4


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("overfit", {"trainer.overfit_batches": 3, "trainer.max_epochs": 30, "dataset.shuffle": False}),
        (
            "limit",
            {"trainer.limit_train_batches": 5, "trainer.max_epochs": 3, "trainer.limit_test_batches": 2},
        ),
        ("fdr", {"trainer.fast_dev_run": True, "logger": {"csv": ...}}),
    ],
)
def test_presets_compose_over_the_budget(preset: str, expected: dict) -> None:
    cfg = compose_train([f"debug={preset}", "budget=cpu"])
    assert cfg.debug_run is True and cfg.threads == 1
    for key, value in expected.items():
        got = cfg
        for part in key.split("."):
            got = got[part]
        if isinstance(value, dict):
            assert set(got) == set(value)
        else:
            assert got == value, key


def test_overfit_sees_the_same_batches_every_epoch(tmp_path: Path, data_dir: Path) -> None:
    from hydra.utils import instantiate

    for preset in ("overfit", None):
        cfg = compose_train([f"data_dir={data_dir}", *([f"debug={preset}"] if preset else [])])
        datamodule = instantiate(cfg.dataset)
        datamodule.setup()
        first = next(iter(datamodule.train_dataloader()))[0]
        ordered = datamodule.splits["train"].images.batch(torch.arange(len(first))).to(first.dtype)
        assert torch.equal(first, ordered) == (preset == "overfit")

    overrides = [
        "debug=overfit",
        "trainer.max_steps=-1",
        "trainer.max_epochs=6",
        "images_every_n_epochs=null",
    ]
    train_tiny(tmp_path, [*overrides, "test=false", "optim.lr=1e-3"])
    assert _status(tmp_path) == "debug"
    losses = [row["train/loss"] for row in read_metrics(tmp_path / "metrics.csv")]
    assert len(losses) == 6 and all(b < a for a, b in itertools.pairwise(losses))
