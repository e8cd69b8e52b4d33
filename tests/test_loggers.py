"""What a W&B dashboard gets from training: names, ids, and α only where it means something."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from tests.conftest import compose_train, train_tiny
from tests.wandb_offline import records, run_summary
from vae_gjs.config import DEFAULT_LATENT_DIM, DEFAULT_LR, DEFAULT_SEED, run_name
from vae_gjs.loggers import WANDB_ID_FILE
from vae_gjs.provenance import provenance as vae_gjs_provenance

pytestmark = pytest.mark.slow


def _offline_runs(run_dir: Path) -> dict[str, dict]:
    """The offline W&B runs of a run folder, by id, as read back from their files."""
    runs = [run_summary(path) for path in run_dir.glob("wandb/offline-run-*/run-*.wandb")]
    return {run["id"]: run for run in runs}


def test_run_name_defaults_are_the_configs_defaults() -> None:
    cfg = compose_train()
    assert (cfg.seed, cfg.model.latent_dim, cfg.optim.lr) == (DEFAULT_SEED, DEFAULT_LATENT_DIM, DEFAULT_LR)
    assert cfg.run_name == "mnist-gjs-a0.5"  # the default divergence is JS^{Gα}, α = 0.5
    baseline = ["divergence=kl_qp", "seed=7", "optim.lr=3e-4", "model.latent_dim=32", "lam=4"]
    assert compose_train(baseline).run_name == "mnist-kl_qp-l4-s7-z32-lr0.0003"
    assert run_name("mnist", "gjs", compose_train(["divergence=gjs", "alpha=0.2"]).divergence, 1, 1234) == (
        "mnist-gjs-a0.2"
    )


def test_baseline_logs_alpha_null_a_fresh_id_per_folder_and_the_same_id_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    first, second = tmp_path / "first", tmp_path / "second"
    epochs = ["trainer.max_steps=-1", "trainer.limit_train_batches=2"]
    overrides = [
        "divergence=kl_qp",
        "logger=wandb",
        "threads=1",
        "seed=7",
        "model.latent_dim=4",
        "optim.lr=3e-4",
        *epochs,
    ]
    train_tiny(first, [*overrides, "trainer.max_epochs=1"])
    assert yaml.safe_load((first / "config.yaml").read_text())["alpha"] is None
    (run_id,) = _offline_runs(first)
    logged = _offline_runs(first)[run_id]
    assert logged["config"]["alpha"] is None and "alpha" not in logged["config"]["divergence"]
    assert logged["name"] == "mnist-kl_qp-s7-z4-lr0.0003"
    assert (first / WANDB_ID_FILE).read_text().strip() == run_id

    train_tiny(second, [*overrides, "trainer.max_epochs=1"])  # same config, another folder: another W&B run
    (old_id,) = _offline_runs(second)
    assert old_id != run_id
    shutil.rmtree(second)  # deleted and run again at the same path: a new W&B run, not the old one
    train_tiny(second, [*overrides, "trainer.max_epochs=1"])
    assert set(_offline_runs(second)) - {old_id}, "a re-created folder reused the deleted run's id"
    assert old_id not in _offline_runs(second)

    (first / "status.json").unlink()  # cut off: starting it again resumes this folder
    train_tiny(first, [*overrides, "trainer.max_epochs=2"])
    assert set(_offline_runs(first)) == {run_id}  # both sessions logged under the stored id
    assert (first / WANDB_ID_FILE).read_text().strip() == run_id


def test_gjs_keeps_its_alpha(tmp_path: Path) -> None:
    train_tiny(tmp_path, ["divergence=gjs", "alpha=0.3", "threads=1", "trainer.max_steps=1"])
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert config["alpha"] == 0.3 and config["divergence"]["alpha"] == 0.3


def test_a_run_to_analyse_train_and_eval_joined_with_provenance_and_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One offline run of ``logger=wandb evaluate=true checkpoint_artifacts=true``, read back: the
    training run is ``job_type=train`` with the git commit and package versions in its config
    and its checkpoints as a model artifact; the evaluation run carries the training
    hyperparameters and the evaluation's options; the eval numbers are in the training run's
    summary too (one panel: eval/test/log_px against alpha)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    quick = ["evaluate=true", "eval.k=2", "eval.n_batches=1", "eval.rec_batches=1", "eval.figures=false"]
    epoch = ["trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    with caplog.at_level("INFO", logger="vae_gjs.evaluation.wandb_log"):
        train_tiny(
            tmp_path, ["alpha=0.3", "logger=wandb", "threads=1", "checkpoint_artifacts=true", *epoch, *quick]
        )
    run_id = (tmp_path / WANDB_ID_FILE).read_text().strip()
    files = sorted(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    sessions = [(path, run_summary(path)) for path in files]
    training = [logged for _, logged in sessions if logged["id"] == run_id]
    (evaluation,) = [logged for _, logged in sessions if logged["id"] != run_id]
    first, reopened = training  # the training session, then the evaluation's update of its summary
    assert first["job_type"] == reopened["job_type"] == "train" and first["config"]["alpha"] == 0.3
    provenance = first["config"]["provenance"]
    assert provenance == vae_gjs_provenance() and provenance["versions"]["torch"] == version("torch")
    eval_json = json.loads((tmp_path / "eval.json").read_text())
    assert eval_json["provenance"] == json.loads((tmp_path / "results.json").read_text())["provenance"]
    assert evaluation["job_type"] == "eval" and evaluation["name"] == "mnist-gjs-a0.3-eval"
    assert evaluation["config"]["alpha"] == 0.3 and evaluation["config"]["training_run_id"] == run_id
    assert evaluation["config"]["eval"]["k"] == 2 and evaluation["config"]["provenance"] == provenance
    log_px = eval_json["metrics"]["test/log_px"]
    assert evaluation["summary"]["eval/test/log_px"] == pytest.approx(log_px)
    assert reopened["summary"]["eval/test/log_px"] == pytest.approx(log_px) and reopened["history"] == []
    # the training session's file (the folders sort by their start second, then by run id: the
    # evaluation's can come first when both started within one second)
    trained = [path for path, logged in sessions if logged["id"] == run_id]
    artifacts = [r.artifact for r in records(trained[0]) if r.WhichOneof("record_type") == "artifact"]
    assert {(a.type, a.name) for a in artifacts} == {("model", f"model-{run_id}")}
    assert "W&B: the evaluation went to mnist-gjs-a0.3-eval (" in caplog.text


def test_provenance_names_this_clones_commit_and_the_installed_versions() -> None:
    import subprocess

    recorded = vae_gjs_provenance()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
    )
    assert recorded["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert recorded["versions"]["lightning"] == version("lightning") and recorded["python"].count(".") == 2
