"""``hydra/launcher=fused`` end to end: a tiny sweep writes every member's run folder (fused and
separate), skips completed members on a re-run, and reports a failed member like a failed job."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY, run_script
from tests.reliability.helpers import cli, one_line_error
from vae_gjs.checkpoints import read_checkpoint
from vae_gjs.evaluation.loading import build_datamodule, load_module
from vae_gjs.hardware import usable_cores
from vae_gjs.rundir import RunDir, load_run_config

FILES = ("config.yaml", "status.json", "metrics.csv", "results.json", "checkpoints/last.ckpt", "train.log")


def sweep(folder: Path, *overrides: str) -> tuple[int, str]:
    result = run_script(
        "train.py", "-m", *TINY, "threads=1", "hydra/launcher=fused", f"hydra.sweep.dir={folder}", *overrides
    )
    return result.returncode, result.stdout + result.stderr


def test_sweep_writes_each_members_folder_and_skips_them_on_a_rerun(tmp_path: Path, data_dir: Path) -> None:
    overrides = ("divergence=kl_qp,gjs,mmd_reference", "alpha=0.3", "hydra.launcher.max_models=2")
    code, output = sweep(tmp_path, *overrides, "images_every_n_epochs=1")
    assert code == 0, output
    assert "Fused group of 2" in output  # kl_qp + gjs fused; mmd_reference (cut by max_models) runs alone
    runs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name.split("divergence=")[1].split(",")[0] for p in runs] == ["gjs", "kl_qp", "mmd_reference"]
    for path in runs:
        for name in FILES:
            assert (path / name).is_file(), f"{path.name} lacks {name}"
        run = RunDir.at(path)
        assert run.status == "completed" and run.results["steps"] == 4
        assert (path / ".hydra" / "overrides.yaml").is_file()
        assert (path / "figures" / "epoch_001_samples.png").is_file()  # training-time pictures
        assert read_checkpoint(run.last_ckpt)["global_step"] == 4
        cfg = load_run_config(run)
        datamodule = build_datamodule(cfg, str(data_dir))
        module, info = load_module(run, cfg, "last", datamodule.image_shape)  # what evaluate.py loads
        assert info["global_step"] == 4
        mu, _ = module.net.encode(datamodule.splits["test"].images.batch(torch.arange(8)))
        assert mu.shape == (8, 10) and torch.isfinite(mu).all()
    stamps = {p: (p / "checkpoints" / "last.ckpt").stat().st_mtime_ns for p in runs}
    code, output = sweep(tmp_path, *overrides)
    assert code == 0, output
    assert output.count("already completed") == 3
    assert stamps == {p: (p / "checkpoints" / "last.ckpt").stat().st_mtime_ns for p in runs}


def test_a_failed_member_is_a_failed_job(tmp_path: Path) -> None:
    code, output = sweep(
        tmp_path,
        "divergence=kl_qp",
        "divergence._target_=tests.fused.helpers.NaNAt",
        "+divergence.at=-1,2",
        "hydra.launcher.n_jobs=1",  # one group (two workers would take a job each)
    )
    assert "Fused group of 2" in output
    assert code != 0 and "1 of 2 jobs failed" in output
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert len(failures) == 1 and "+divergence.at=2" in failures[0]["overrides"]
    assert "non-finite loss at step 2" in failures[0]["error"]
    statuses = {p.name: RunDir.at(p).status for p in tmp_path.iterdir() if p.is_dir()}
    assert sorted(statuses.values()) == ["completed", "failed"]


def test_a_member_that_trains_nothing_writes_what_its_separate_run_writes(tmp_path: Path) -> None:
    """``trainer.limit_train_batches=0``: Lightning skips training (no checkpoint, no training
    row); the members run as separate runs (a group used to write zero-loss rows and a
    best.ckpt for epochs that never trained)."""
    code, output = sweep(
        tmp_path, "divergence=kl_qp,gjs", "trainer.limit_train_batches=0", "hydra.launcher.n_jobs=1"
    )
    assert code == 0, output
    assert "a separate run (trainer.limit_train_batches=0 (no training))" in output
    for path in (p for p in tmp_path.iterdir() if p.is_dir()):
        run = RunDir.at(path)
        assert run.status == "completed" and (run.results["steps"], run.results["epochs"]) == (0, 0)
        assert not run.last_ckpt.exists() and not run.best_ckpt.exists()
        with (path / "metrics.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 1 and rows[0]["test/rec"] and not rows[0].get("train/loss")


@pytest.mark.parametrize(
    ("option", "allowed"),
    [
        ("hydra.launcher.max_models=0", "allowed: an integer >= 1"),
        ("hydra.launcher.n_jobs=0", "allowed: null (chosen for the machine), -1 (one worker per CPU core)"),
    ],
)
def test_bad_launcher_options_are_one_line(tmp_path: Path, option: str, allowed: str) -> None:
    """Checked when the sweep starts, not in the launcher's constructor (Hydra wrapped that in
    four lines: ``Error in call to target ...``, the ValueError, ``full_key``, the hint)."""
    result = cli(
        "train.py",
        "-m",
        *TINY,
        "hydra/launcher=fused",
        "divergence=gjs",
        "alpha=0.2,0.4",
        option,
        f"hydra.sweep.dir={tmp_path}",
        logs=tmp_path / "logs",
        timeout=120,
    )
    one_line_error(result, f"{option} is not allowed; {allowed}")
    assert "Error in call to target" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name != "logs"]


def test_a_large_n_jobs_is_capped_by_the_cores_and_the_jobs_in_one_line(tmp_path: Path) -> None:
    """``n_jobs=999`` for two jobs used to start ~1,000 worker processes (415 s instead of ~10 s)."""
    code, output = sweep(
        tmp_path,
        "divergence=kl_qp",
        "seed=1,2",
        "trainer.max_steps=1",
        "test=false",
        "hydra.launcher.n_jobs=999",
    )
    assert code == 0, output
    cores = usable_cores()
    capped = f"more than the {cores} usable CPU cores and the 2 jobs; using n_jobs={min(2, cores)}"
    assert f"hydra.launcher.n_jobs=999 is {capped}" in output
    assert output.count("n_jobs=999 is more than") == 1
