"""evaluate.py as a user runs it, on the tiny 4-step MNIST run of tests/conftest.py."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from tests.conftest import DATA_DIR, compose_train, copy_run, run_script
from tests.wandb_offline import run_summary
from vae_gjs.config import validate_evaluate
from vae_gjs.errors import ConfigError, RunError
from vae_gjs.evaluation.images import LABEL_WIDTH
from vae_gjs.rundir import RunDir, load_run_config

pytestmark = pytest.mark.slow

#: Small but complete: both splits (2 batches each), K = 4 over 2 test batches, figures.
QUICK = ("k=4", "n_batches=2", "batch_size=50", "rec_batches=2", "bootstrap=200", "threads=1")
FIGURES = {
    "reconstructions": (342, 342),
    "samples": (342, 342),
    "traversals": (LABEL_WIDTH + 342, 342),  # a margin with each row's label: z<d>  KL <value>
}  # 10 rows of 32 + 2


def _edit_config(run: Path, **changes: object) -> None:
    config = yaml.safe_load((run / "config.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def main(cfg: DictConfig) -> object:
    """evaluate.py's path in this process: validate, then run the task."""
    from vae_gjs.tasks.evaluate import evaluate

    validate_evaluate(cfg)
    return evaluate(cfg)


def _evaluate_in_process(*overrides: str) -> object:
    return main(compose_train([*QUICK, f"data_dir={DATA_DIR}", *overrides], config="evaluate"))


@pytest.fixture(scope="module")
def evaluated(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the tiny run, evaluated by ``python evaluate.py``."""
    run = copy_run(tiny_run, tmp_path_factory.mktemp("evaluated") / "run")
    result = run_script("evaluate.py", f"run_dir={run}", *QUICK, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (Path(__file__).resolve().parents[2] / "outputs" / "evaluate").exists()
    return run, json.loads((run / "eval.json").read_text())


def test_eval_json_has_every_number(evaluated: tuple[Path, dict]) -> None:
    _, record = evaluated
    metrics = record["metrics"]
    for split in ("train", "test"):
        assert {f"{split}/{key}" for key in ("sse", "rec", "div", "loss", "kl_qp")} <= set(metrics)
        assert record["n_images"][split] == 100  # rec_batches=2 of 50
        assert len(record["kl_per_dim"][split]) == 10
    assert {"test/log_px", "test/log_px_ci_low", "test/log_px_ci_high", "test/elbo"} <= set(metrics)
    assert all(math.isfinite(value) for value in metrics.values())
    evidence = record["evidence"]
    assert evidence["k"] == 4 and evidence["n_batches"] == 2 and evidence["n_images"] == 100
    assert evidence["ci95"][0] <= evidence["mean"] <= evidence["ci95"][1]
    assert evidence["elbo_mean"] <= evidence["mean"]  # log-mean-exp of the weights >= their mean
    assert record["checkpoint"]["which"] == "last" and record["checkpoint"]["global_step"] == 4
    assert record["checkpoint"]["monitor"] == "train/loss"  # no validation split: best.ckpt is on train/loss
    assert record["options"]["k"] == 4 and record["seed"] == 0 and record["config_version"] == 1
    assert sorted(record["traversal"]["dims_by_test_kl"]) == list(range(10))
    kl = record["kl_per_dim"]["test"]
    assert [kl[d] for d in record["traversal"]["dims_by_test_kl"]] == sorted(kl, reverse=True)
    assert set(record["timings_s"]) >= {"load", "evidence", "figures", "total"}


def test_pngs_exist_with_the_grid_sizes(evaluated: tuple[Path, dict]) -> None:
    run, record = evaluated
    assert record["figures"] == {name: f"figures/{name}.png" for name in FIGURES}
    for name, size in FIGURES.items():
        with Image.open(run / "figures" / f"{name}.png") as image:
            assert image.format == "PNG" and image.size == size


def test_a_rerun_gives_identical_numbers(evaluated: tuple[Path, dict]) -> None:
    run, record = evaluated
    again = _evaluate_in_process(f"run_dir={run}", "force=true")
    assert again["metrics"] == record["metrics"]
    assert again["evidence"]["batch_log_px"] == record["evidence"]["batch_log_px"]
    assert again["kl_per_dim"] == record["kl_per_dim"]


def test_sweep_skips_done_runs_and_reports_every_failure(
    evaluated: tuple[Path, dict], tmp_path: Path
) -> None:
    run, _ = evaluated
    sweep = tmp_path / "sweep"
    done = sweep / "alpha=0.1"
    shutil.copytree(run, done)
    written = (done / "eval.json").stat().st_mtime_ns
    (sweep / "alpha=0.2").mkdir()  # a folder without config.yaml is not a run: ignored
    no_checkpoint = copy_run(run, sweep / "alpha=0.3")
    (no_checkpoint / "checkpoints" / "last.ckpt").unlink()
    old = copy_run(run, sweep / "alpha=0.4")
    _edit_config(old, config_version=None)
    result = run_script("evaluate.py", f"sweep_dir={sweep}", *QUICK, timeout=300)
    assert result.returncode != 0
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, result.stderr[-3000:]
    assert "2 of 3 runs failed" in error[0]
    assert "alpha=0.3: " in error[0] and "has no last checkpoint (last.ckpt)" in error[0]
    assert "alpha=0.4: " in error[0] and "config from an older version" in error[0]
    assert "Traceback" not in result.stderr
    assert "Skipping" in result.stdout
    assert (done / "eval.json").stat().st_mtime_ns == written
    assert not (no_checkpoint / "eval.json").exists() and not (old / "eval.json").exists()


def test_sweep_and_reports_leave_out_runs_still_training(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run folder whose lock a live process holds is being trained: its last.ckpt is a moving
    target, so a sweep evaluation (and a report) skips it and says so; it is evaluated once the
    training ends (the lock released)."""
    from vae_gjs.runlock import RunLock, holder

    sweep = tmp_path / "sweep"
    training = copy_run(tiny_run, sweep / "alpha=0.1")
    (training / ".lock").unlink(missing_ok=True)
    assert holder(training) is None and not (training / ".lock").exists()  # looking creates nothing
    (training / ".lock").write_text("999999\n")  # a stale lock (its process is gone) is no holder
    assert holder(training) is None
    with RunLock(training), caplog.at_level("INFO", logger="vae_gjs.evaluation.sweep"):
        assert holder(training) == str(os.getpid())
        _evaluate_in_process(f"sweep_dir={sweep}", "figures=false")
        assert not (training / "eval.json").exists()
    assert f"alpha=0.1: still training (pid {os.getpid()}), not evaluated" in caplog.text
    assert "0 runs in" in caplog.text and "1 still training" in caplog.text
    assert holder(training) is None  # released: the next evaluation takes it
    _evaluate_in_process(f"sweep_dir={sweep}", "figures=false")
    assert (training / "eval.json").is_file()


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("not_a_run", "is not a run folder: it has no config.yaml"),
        ("no_checkpoint", "has no best checkpoint (best.ckpt); checkpoints present: last.ckpt"),
        ("old_config", "config from an older version of vae-gjs (config.yaml has no config_version"),
    ],
)
def test_bad_run_folders_give_one_line(tiny_run: Path, tmp_path: Path, problem: str, message: str) -> None:
    run = tmp_path / "run"
    if problem == "not_a_run":
        run.mkdir()
    else:
        copy_run(tiny_run, run)
    if problem == "no_checkpoint":
        (run / "checkpoints" / "best.ckpt").unlink()
    if problem == "old_config":
        _edit_config(run, config_version=None)
    result = run_script("evaluate.py", f"run_dir={run}", "checkpoint=best", *QUICK, timeout=120)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_newer_config_version_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    _edit_config(run, config_version=2)
    with pytest.raises(RunError, match="config from a newer version of vae-gjs"):
        load_run_config(RunDir.at(run))


def test_a_run_folder_from_before_conf_module_rebuilds_the_same_model(tiny_run: Path) -> None:
    from vae_gjs.evaluation.loading import module_config

    cfg = load_run_config(RunDir.at(tiny_run))
    legacy = cfg.copy()
    del legacy["module"]
    assert OmegaConf.to_container(module_config(legacy)) == OmegaConf.to_container(cfg.module)


def test_weights_of_another_architecture_are_named(tiny_run: Path, tmp_path: Path) -> None:
    from vae_gjs.evaluation.loading import load_module

    run = copy_run(tiny_run, tmp_path / "run")
    module = yaml.safe_load((run / "config.yaml").read_text())["module"]
    _edit_config(run, module={**module, "net": {**module["net"], "latent_dim": 5}})
    with pytest.raises(
        RunError, match=r"does not fit the architecture.*shapes \(checkpoint vs config\) net\.decoder"
    ):
        load_module(RunDir.at(run), load_run_config(RunDir.at(run)), "last", (1, 32, 32))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["report=table1"], "report=table1 needs sweep_dir"),
        (
            ["sweep_dir=a", "report=table2"],
            "report='table2' is unknown; allowed: curves, fig3, fig4, fig5, learned_alpha, likelihood, "
            "table1",
        ),
        (
            ["sweep_dir=a", "report=table1", "table1_dir=b"],
            "table1_dir=b is only used by report=learned_alpha and report=likelihood; "
            "allowed with report=table1: table1_dir=null",
        ),
        ([], "give exactly one of run_dir"),
        (["run_dir=a", "sweep_dir=b"], "give exactly one of run_dir"),
        (["run_dir=a", "k=0"], "k=0 is not allowed"),
        (["run_dir=a", "checkpoint=first"], "checkpoint='first' is unknown; allowed: best, last"),
        (["run_dir=a", "splits=[train,valid]"], "splits='valid' is unknown"),
        (["run_dir=a", "device=gpu"], "device='gpu' is unknown"),
    ],
)
def test_bad_options_are_named(overrides: list[str], message: str) -> None:
    cfg = compose_train(overrides, config="evaluate")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_evaluate(cfg)


def test_report_option_is_checked_before_torch_work() -> None:
    result = run_script("evaluate.py", "report=table1", timeout=60)
    assert result.returncode != 0
    assert "Error: report=table1 needs sweep_dir=<folder of run folders>" in result.stderr
    assert "Traceback" not in result.stderr


def test_reports_evaluate_missing_runs_then_build_table_and_figures(
    tiny_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    sweep = tmp_path / "sweep"
    copy_run(tiny_run, sweep / "divergence=kl_qp")
    quick = [
        f"data_dir={data_dir}",
        "k=2",
        "n_batches=2",
        "batch_size=16",
        "rec_batches=2",
        "bootstrap=20",
        "figures=false",
    ]
    for report in ("table1", "fig3", "fig5"):
        main(compose_train([f"sweep_dir={sweep}", f"report={report}", *quick], config="evaluate"))
    learned = ["report=learned_alpha", f"table1_dir={sweep}", *quick]  # a kl_qp run: nothing learned
    with pytest.raises(RunError, match=r"has no run that learned α .* only 1 fixed-α runs"):
        main(compose_train([f"sweep_dir={sweep}", *learned], config="evaluate"))
    assert (sweep / "divergence=kl_qp" / "eval.json").is_file()
    table = (sweep / "reports" / "table1.md").read_text()
    kl_qp = json.loads((sweep / "divergence=kl_qp" / "eval.json").read_text())["metrics"]["test/sse"]
    assert rf"| KL(q(z\|x) ‖ p(z)) | {kl_qp:.2f} |  | 8.46 |" in table
    assert "gjs α=0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9: no run folder" in table
    assert {p.name for p in (sweep / "reports").iterdir()} == {
        "table1.md",
        "table1.csv",
        "table1.tex",
        "fig3.png",
        "fig5.png",
    }


def test_wandb_gets_the_numbers_and_images(
    evaluated: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = evaluated
    copy = copy_run(run, tmp_path / "run")
    wandb = {
        "_target_": "vae_gjs.loggers.wandb_logger",
        "project": "vae-gjs",
        "save_dir": str(copy),
        "mode": "offline",
    }
    _edit_config(copy, logger={"wandb": {**wandb, "name": "mnist-kl_qp", "group": "sweep-a"}})
    (copy / "wandb_id").write_text("train123\n")  # the training run's id (written by train.py)
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = _evaluate_in_process(f"run_dir={copy}", "splits=[test]")
    assert record["metrics"]["test/log_px"] == pytest.approx(evaluated[1]["metrics"]["test/log_px"])
    runs = {run_summary(next(f.glob("run-*.wandb")))["id"]: f for f in (copy / "wandb").glob("offline-run-*")}
    (folder,) = [f for run_id, f in runs.items() if run_id != "train123"]  # the evaluation's own run
    images = sorted(
        p.name.split("_")[0] for p in (folder / "files" / "media" / "images" / "eval").glob("*.png")
    )
    assert images == sorted(FIGURES)
    logged = run_summary(next(folder.glob("run-*.wandb")))
    # a separate, clearly named run of the same group, not a second run under the training id
    assert logged["name"] == "mnist-kl_qp-eval" and logged["job_type"] == "eval"
    assert logged["group"] == "sweep-a" and logged["id"] not in ("train123", "")
    assert logged["config"]["training_run_id"] == "train123"
    assert (
        logged["config"]["eval"]["splits"] == ["test"] and logged["config"]["lam"] == 1.0
    )  # options, hparams
    steps = {row["trainer/global_step"] for row in logged["history"]}
    assert steps == {json.loads((copy / "results.json").read_text())["steps"]} == {4}
    assert logged["summary"]["eval/test/log_px"] == pytest.approx(record["metrics"]["test/log_px"])
    training = run_summary(next(runs["train123"].glob("run-*.wandb")))  # reopened: its summary only
    assert training["summary"]["eval/test/log_px"] == logged["summary"]["eval/test/log_px"]
    assert training["history"] == [] and training["job_type"] == "train"


def test_evidence_under_both_likelihoods_from_one_pass(evaluated: tuple[Path, dict], tmp_path: Path) -> None:
    """evidence_likelihood=[bernoulli,gaussian]: the first is the headline test/log_px, both are
    kept per name, and the Gaussian one equals the default evaluation's (same samples, same seed)."""
    run, default = evaluated
    both = _evaluate_in_process(f"run_dir={run}", "force=true", "evidence_likelihood=[bernoulli,gaussian]")
    metrics = both["metrics"]
    assert both["evidence"]["likelihood"] == "bernoulli" and both["evidence"]["trained_with"] == "gaussian"
    assert metrics["test/log_px"] == metrics["test/log_px_bernoulli"]
    assert metrics["test/log_px_gaussian"] == default["metrics"]["test/log_px"]
    assert math.isfinite(metrics["test/log_px_bernoulli"])
    assert metrics["test/log_px_bernoulli"] != metrics["test/log_px_gaussian"]
    assert set(both["evidence_by_likelihood"]) == {"bernoulli", "gaussian"}
    with pytest.raises(ConfigError, match="evidence_likelihood='poisson' is unknown"):
        validate_evaluate(compose_train([f"run_dir={run}", "evidence_likelihood=poisson"], config="evaluate"))
    _evaluate_in_process(f"run_dir={run}", "force=true")  # leave the module fixture as it was


def test_figure4_shows_each_model_with_its_top_dimensions(
    tiny_run: Path, tmp_path: Path, data_dir: Path
) -> None:
    """report=fig4 on a sweep of a KL(q‖p) run and two JS^{Gα} runs: the JS^{Gα} panel is the run
    of lowest *training* SSE, each panel traverses the 5 dimensions of highest test KL."""
    from vae_gjs.reports import collect, figure4_runs

    sweep = tmp_path / "sweep"
    copy_run(tiny_run, sweep / "divergence=kl_qp")
    for alpha in (0.3, 0.7):
        run = copy_run(tiny_run, sweep / f"alpha={alpha},divergence=gjs")
        config = yaml.safe_load((run / "config.yaml").read_text())
        gjs = {"_target_": "vae_gjs.divergences.GJS", "alpha": alpha}
        config["choices"]["divergence"], config["alpha"], config["divergence"] = "gjs", alpha, gjs
        if isinstance(config.get("module", {}).get("divergence"), dict):
            config["module"]["divergence"] = gjs
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    quick = [f"data_dir={data_dir}", "k=2", "n_batches=1", "batch_size=16", "rec_batches=2", "bootstrap=20"]
    main(compose_train([f"sweep_dir={sweep}", *quick, "figures=false"], config="evaluate"))
    record = json.loads((sweep / "alpha=0.7,divergence=gjs" / "eval.json").read_text())
    record["metrics"]["train/sse"] -= 1.0  # make α = 0.7 the lower training error
    (sweep / "alpha=0.7,divergence=gjs" / "eval.json").write_text(json.dumps(record))
    chosen = figure4_runs(collect(sweep))
    assert [label for label, _ in chosen] == ["KL(q‖p)", "JS^Gα, α=0.7"]
    main(compose_train([f"sweep_dir={sweep}", "report=fig4", *quick], config="evaluate"))
    with Image.open(sweep / "reports" / "fig4.png") as picture:
        width, height = picture.size
    assert width > 2 * 300 and height > 300  # two panels side by side
    empty = tmp_path / "empty"
    copy_run(tiny_run, empty / "divergence=beta_vae")
    _edit_config(empty / "divergence=beta_vae", choices={"dataset": "mnist", "divergence": "beta_vae"})
    with pytest.raises(RunError, match="no finished and evaluated run"):
        main(compose_train([f"sweep_dir={empty}", "report=fig4", *quick], config="evaluate"))


def test_a_sweep_jobs_folder_needs_no_quoting(tmp_path: Path) -> None:
    """``run_dir=<sweep>/alpha=0.3,divergence=gjs`` reaches evaluate.py as that folder (Hydra's
    grammar would refuse the '=' and ',' unquoted); quoted values and other keys pass unchanged."""
    from vae_gjs.cli import quoted_paths

    job = tmp_path / "alpha=0.3,divergence=gjs"
    assert quoted_paths([f"run_dir={job}", "k=2", "'evidence_likelihood=[gaussian,bernoulli]'"]) == [
        f"run_dir='{job}'",
        "k=2",
        "'evidence_likelihood=[gaussian,bernoulli]'",
    ]
    assert quoted_paths([f"sweep_dir='{job}'", "run_dir=outputs/run"]) == [
        f"sweep_dir='{job}'",
        "run_dir=outputs/run",
    ]
    result = run_script("evaluate.py", f"run_dir={job}", timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"Error: run folder {job} does not exist" in result.stderr


def test_one_batch_of_evidence_says_it_has_no_interval(evaluated: tuple[Path, dict], tmp_path: Path) -> None:
    run = copy_run(evaluated[0], tmp_path / "run")
    result = run_script("evaluate.py", f"run_dir={run}", *QUICK, "n_batches=1", "figures=false", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "no interval from one batch (its bounds are the mean itself; n_batches >= 2 gives one)"
        in result.stdout
    )
    assert "95% CI" not in result.stdout
    assert json.loads((run / "eval.json").read_text())["evidence"]["ci95_note"].startswith("no interval")
    assert evaluated[1]["evidence"]["ci95_note"] is None  # two batches: a bootstrap interval


def test_evaluate_help_lists_its_own_options_and_no_training_groups() -> None:
    result = run_script("evaluate.py", "--help", timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("evaluate.py (installed: vae-gjs-evaluate): numbers (eval.json)")
    assert "== Configuration groups ==" not in result.stdout and "divergence:" not in result.stdout
    for option in ("run_dir: null", "sweep_dir: null", "report: null", "k: 128", "checkpoint: last"):
        assert option in result.stdout
