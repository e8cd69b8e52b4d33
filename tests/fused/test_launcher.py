"""``hydra/launcher=fused`` end to end: a tiny sweep writes every member's run folder (fused and
separate), skips completed members on a re-run, and reports a failed member like a failed job."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.conftest import TINY, run_script
from vae_gjs.checkpoints import read_checkpoint
from vae_gjs.evaluation.loading import build_datamodule, load_module
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
    )
    assert code != 0 and "1 of 2 jobs failed" in output
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert len(failures) == 1 and "+divergence.at=2" in failures[0]["overrides"]
    assert "non-finite loss at step 2" in failures[0]["error"]
    statuses = {p.name: RunDir.at(p).status for p in tmp_path.iterdir() if p.is_dir()}
    assert sorted(statuses.values()) == ["completed", "failed"]


def test_bad_launcher_options_are_named(tmp_path: Path) -> None:
    code, output = sweep(tmp_path, "divergence=gjs", "alpha=0.2,0.4", "hydra.launcher.max_models=0")
    assert code != 0 and "hydra.launcher.max_models=0 is not allowed; allowed: an integer >= 1" in output
    assert "Traceback" not in output and not any(tmp_path.iterdir())
