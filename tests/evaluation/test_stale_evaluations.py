"""An eval.json names the checkpoint it measured; a report never keeps one of other weights than
the run holds now, and a corrupt eval.json is redone by every path of evaluate.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.conftest import DATA_DIR, compose_train, copy_run
from vae_gjs.io import file_digest
from vae_gjs.reports import collect
from vae_gjs.rundir import RunDir
from vae_gjs.runlock import RunLock

#: Small but complete: both splits (2 batches each), K = 2 over 2 test batches, no figures.
QUICK = ("k=2", "n_batches=2", "batch_size=16", "rec_batches=2", "bootstrap=20", "figures=false", "threads=1")


def _evaluate(*overrides: str) -> object:
    from vae_gjs.config import validate_evaluate
    from vae_gjs.tasks.evaluate import evaluate

    cfg: DictConfig = compose_train([*QUICK, f"data_dir={DATA_DIR}", *overrides], config="evaluate")
    validate_evaluate(cfg)
    return evaluate(cfg)


def test_stale_evaluation_compares_the_checkpoint_it_measured_with_the_file_now(tmp_path: Path) -> None:
    run = RunDir.at(tmp_path)
    assert run.stale_evaluation({"metrics": {}}) is None  # nothing to compare: no checkpoints
    run.checkpoints.mkdir()
    run.last_ckpt.write_bytes(b"weights after step 4")
    assert run.stale_evaluation({"metrics": {}}) == "eval.json does not say which checkpoint it measured"
    measured = {"file": "checkpoints/last.ckpt", "sha256": file_digest(run.last_ckpt), "global_step": 4}
    assert run.stale_evaluation({"checkpoint": measured}) is None
    run.last_ckpt.write_bytes(b"weights after step 8")  # the run trained on
    why = run.stale_evaluation({"checkpoint": measured})
    assert why is not None and why.startswith("eval.json measured checkpoints/last.ckpt at step 4 (sha256 ")
    assert why.endswith(f"which has changed since (sha256 {file_digest(run.last_ckpt)[:12]})")
    run.last_ckpt.unlink()  # checkpoints deleted after the evaluation: the step still tells
    run.write_results({"steps": 8})
    assert run.stale_evaluation({"checkpoint": measured}) == (
        "eval.json measured step 4, the run ended at step 8 (checkpoints/last.ckpt is gone)"
    )
    run.write_results({"steps": 4})
    assert run.stale_evaluation({"checkpoint": measured}) is None


def _train_on(run: Path) -> None:
    """What a sweep still training does to a run between two reports: new weights in last.ckpt,
    four steps later."""
    import torch

    path = run / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    name = next(key for key, value in checkpoint["state_dict"].items() if value.is_floating_point())
    checkpoint["state_dict"][name] += 0.05
    checkpoint["global_step"] = 8
    torch.save(checkpoint, path)


@pytest.mark.slow
def test_a_report_redoes_an_eval_json_of_weights_the_run_no_longer_holds(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 27's case: a report made while the sweep trained wrote an eval.json of a mid-training
    checkpoint; the next report must not keep it. It re-evaluates the final weights, and while
    it cannot (the run is being trained again: its lock is held) the run is left out, with why."""
    sweep = tmp_path / "sweep"
    run = copy_run(tiny_run, sweep / "divergence=kl_qp")
    _evaluate(f"sweep_dir={sweep}", "report=table1")
    before = json.loads((run / "eval.json").read_text())
    assert before["checkpoint"]["global_step"] == 4
    assert before["checkpoint"]["sha256"] == file_digest(run / "checkpoints" / "last.ckpt")

    _evaluate(f"run_dir='{run}'", "checkpoint=best", "force=true")  # not the final weights
    with caplog.at_level("INFO"):
        _evaluate(f"sweep_dir={sweep}", "report=table1")
    assert "eval.json measured the best checkpoint, the report shows the last one" in caplog.text
    assert json.loads((run / "eval.json").read_text())["checkpoint"]["which"] == "last"
    caplog.clear()

    _train_on(run)
    with RunLock(run):  # trained again in place: a report leaves it out and says why
        (record,) = collect(sweep)
        assert not record.finished and record.problem.startswith("still training (pid ")
    (record,) = collect(sweep)
    assert not record.finished and "which has changed since" in record.problem
    with caplog.at_level("INFO"):
        _evaluate(f"sweep_dir={sweep}", "report=table1")
    assert "divergence=kl_qp: eval.json measured checkpoints/last.ckpt at step 4" in caplog.text
    after = json.loads((run / "eval.json").read_text())
    assert after["checkpoint"]["global_step"] == 8
    assert after["metrics"]["test/sse"] != before["metrics"]["test/sse"]
    table = (sweep / "reports" / "table1.md").read_text()
    assert f"| KL(q(z\\|x) ‖ p(z)) | {after['metrics']['test/sse']:.2f} |" in table


@pytest.mark.slow
def test_a_report_leaves_out_a_run_that_is_not_completed(tiny_run: Path, tmp_path: Path) -> None:
    """A fused member mid-training is ``running`` (with or without a lock): a report neither
    evaluates it nor shows its old eval.json."""
    sweep = tmp_path / "sweep"
    run = copy_run(tiny_run, sweep / "divergence=kl_qp")
    RunDir.at(run).set_status("running")
    _evaluate(f"sweep_dir={sweep}", "report=table1")
    assert not (run / "eval.json").exists()
    # how far it got: the tiny run trained 4 steps, one epoch of its metrics.csv
    assert (
        "kl_qp: status running, 1 of 100 epochs trained, no process trains it"
        in (sweep / "reports" / "table1.md").read_text()
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sweep_dir", "report=fig5"])
def test_a_corrupt_eval_json_is_evaluated_again_by_every_path(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """One rule: a corrupt eval.json counts as none, whether ``evaluate.py sweep_dir=`` or a
    report meets it; the run is evaluated again and a line says so."""
    sweep = tmp_path / "sweep"
    run = copy_run(tiny_run, sweep / "divergence=kl_qp")
    (run / "eval.json").write_text('{"metrics": ')
    with caplog.at_level("INFO"):
        _evaluate(f"sweep_dir={sweep}", *([] if how == "sweep_dir" else ["report=fig5"]))
    assert json.loads((run / "eval.json").read_text())["checkpoint"]["global_step"] == 4
    expected = (
        "is corrupt (JSONDecodeError" if how == "sweep_dir" else "divergence=kl_qp: eval.json is corrupt"
    )
    assert expected in caplog.text and "evaluating" in caplog.text
