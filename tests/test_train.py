"""train.py as a user runs it: errors, resuming, the objective, evaluation after training (the
README's own commands, as typed: tests/test_readme.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY, run_script, train_tiny
from vae_gjs.errors import RunError
from vae_gjs.rundir import read_metrics

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("alpha=-0.1", "alpha=-0.1 is outside [0, 1]"),
        ("lam=-1", "lam=-1 is negative; allowed: a real number >= 0"),
        ("dataset=cifar", "dataset=cifar is not an option of the dataset group"),
        ("optim.alpha_lr=-1", "optim.alpha_lr=-1 is negative; allowed: a real number >= 0"),
        ("learn_alpha=maybe", "learn_alpha='maybe' is not allowed; allowed: true or false"),
    ],
)
def test_bad_values_fail_fast_with_one_line(override: str, message: str, tmp_path: Path) -> None:
    result = run_script("train.py", override, "logger=csv", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_trainer_argument_is_named(tmp_path: Path) -> None:
    result = run_script("train.py", *TINY, "+trainer.max_epoch=3", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert "trainer.max_epoch is not a lightning.Trainer argument" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_short_epoch_gives_no_logging_interval_hint(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """Lightning's "smaller than the logging interval" advice (for its own log_every_n_steps, which
    this project does not use for its metrics) is not printed on every short run."""
    train_tiny(
        tmp_path,
        ["threads=1", "trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.limit_train_batches=2"],
    )
    assert not [w for w in recwarn if "logging interval" in str(w.message)]


def test_a_run_continues_from_last_checkpoint(tmp_path: Path) -> None:
    train_tiny(tmp_path, ["trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.limit_train_batches=3"])
    (tmp_path / "status.json").unlink()  # pretend the run was cut off after epoch 0
    train_tiny(tmp_path, ["trainer.max_steps=-1", "trainer.max_epochs=2", "trainer.limit_train_batches=3"])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 6 and results["epochs"] == 2
    assert [row["epoch"] for row in read_metrics(tmp_path / "metrics.csv")] == [0, 1, 2]


def test_a_validation_split_gives_val_metrics_the_objective_and_best_on_val_loss(tmp_path: Path) -> None:
    from vae_gjs.tasks.train import train

    epoch = ["trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.limit_train_batches=2"]
    split = ["dataset.val_size=500", "trainer.limit_val_batches=1", "objective=val/rec"]
    cfg = train_tiny(tmp_path, [*epoch, *split])
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"val/rec", "val/loss", "test/rec"} <= set(results) and results["val/rec"] != results["test/rec"]
    assert results["best_checkpoint"] == "best.ckpt" and results["best_checkpoint_monitor"] == "val/loss"
    assert train(cfg) == results["val/rec"]  # the completed run answers with its objective


def test_evaluate_true_writes_eval_json_after_training_and_on_a_rerun(tmp_path: Path) -> None:
    quick = ["evaluate=true", "eval.k=2", "eval.n_batches=2", "eval.batch_size=16", "eval.rec_batches=2"]
    train_tiny(tmp_path, [*quick, "eval.figures=false"])
    first = json.loads((tmp_path / "eval.json").read_text())
    assert first["evidence"]["k"] == 2 and first["metrics"]["test/sse"] > 0
    assert not (tmp_path / "figures").exists()
    train_tiny(tmp_path, quick)  # completed run: not retrained, but evaluated with the new options
    assert (tmp_path / "figures" / "samples.png").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["steps"] == 4

    # a run folder kept without its checkpoints (docs/runs): its eval.json of the final step is
    # kept by the same sweep run again; asking for other options names the missing checkpoint
    evaluated = (tmp_path / "eval.json").read_text()
    shutil.rmtree(tmp_path / "checkpoints")
    train_tiny(tmp_path, quick)
    assert (tmp_path / "eval.json").read_text() == evaluated
    with pytest.raises(RunError, match=r"has no last checkpoint \(last.ckpt\); checkpoints present: none"):
        train_tiny(tmp_path, [*quick, "eval.k=3"])


@pytest.mark.parametrize(
    "args", [("--help",), ("alpha=1.5",), ("learn_alpha=true", "divergence=kl_qp"), ("--cfg", "job")]
)
def test_help_and_bad_values_answer_without_importing_torch(args: tuple[str, ...]) -> None:
    """``--help``, ``--cfg`` and config errors must not wait for torch and Lightning (~7 s)."""
    result = run_script("-X", "importtime", "train.py", *args, timeout=120)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "vae_gjs.cli" in imported or "hydra" in imported
    assert not imported & {"torch", "lightning"}, sorted(imported & {"torch", "lightning"})
