"""Reports that cannot show wrong numbers: runs that do not belong together are refused in one
line before anything is evaluated; a corrupt eval.json or config.yaml is named, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import compose_train, run_script
from tests.reports.test_reports import _run, make_sweep
from tests.reports.test_seeds import make_seeded_sweep
from tests.wandb_offline import run_summary
from vae_gjs.errors import RunError
from vae_gjs.reports import check_report, collect, table1, write_report
from vae_gjs.reports.table1 import ROWS


def _edit(run: Path, **changes: object) -> None:
    """Set top-level keys of the run's config.yaml; ``dataset`` also sets ``choices.dataset``."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config.update(changes)
    if isinstance(changes.get("dataset"), dict):
        config["choices"]["dataset"] = changes["dataset"]["name"]
    (run / "config.yaml").write_text(yaml.safe_dump(config))


def _two_settings(folder: Path, setting: str) -> Path:
    """A KL(q‖p) and a JS^{Gα} run of MNIST at batch 64, the second changed in ``setting``; neither
    evaluated (no eval.json)."""
    first = _run(folder, "kl_qp", 0.5, 9.5, 9.8, -95)
    second = _run(folder, "gjs", 0.2, 9.0, 9.1, -96)
    for run in (first, second):
        _edit(run, dataset={"name": "mnist", "batch_size": 64})
        (run / "eval.json").unlink()
    if setting == "dataset":
        _edit(second, dataset={"name": "fmnist", "batch_size": 64})
    else:
        _edit(second, dataset={"name": "mnist", "batch_size": 32})
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    ("report", "setting", "message"),
    [
        ("table1", "dataset", "report=table1 refuses to join runs of different datasets: fmnist (1 run: "),
        ("fig5", "batch_size", "report=fig5 refuses to join runs of different batch sizes: 32 (1 run: "),
    ],
)
def test_a_report_refuses_runs_that_do_not_belong_together_before_evaluating(
    tmp_path: Path, report: str, setting: str, message: str
) -> None:
    """evaluate.py report=... on MNIST and Fashion-MNIST runs (or two batch sizes): exit code 1,
    one Error: line naming both values and their runs, no traceback, and no run evaluated."""
    sweep = _two_settings(tmp_path / "sweep", setting)
    result = run_script("evaluate.py", f"report={report}", f"sweep_dir={sweep}", "threads=1", timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "mnist (1 run: " in errors[0] or "64 (1 run: " in errors[0]
    assert "Traceback" not in result.stderr
    assert not list(sweep.glob("*/eval.json")) and not (sweep / "reports").exists()


@pytest.mark.parametrize(
    ("report", "setting", "message"),
    [
        ("fig3", "dataset", r"report=fig3 refuses to join runs of different datasets: fmnist \(1 run: "),
        ("fig4", "batch_size", r"report=fig4 refuses to join runs of different batch sizes: 32 \(1 run: "),
        ("fig5", "dataset", r"report=fig5 refuses to join runs of different datasets: fmnist \(1 run: "),
        ("learned_alpha", "dataset", "report=learned_alpha refuses to join runs of different datasets"),
        ("likelihood", "batch_size", "report=likelihood refuses to join runs of different batch sizes"),
        ("curves", "dataset", "report=curves refuses to join runs of different datasets"),
    ],
)
def test_each_report_checks_its_runs_first(tmp_path: Path, report: str, setting: str, message: str) -> None:
    """The same check in the process (the CLI turns the error into its one line, as above)."""
    from vae_gjs.config import validate_evaluate
    from vae_gjs.tasks.evaluate import evaluate

    sweep = _two_settings(tmp_path / "sweep", setting)
    cfg = compose_train([f"report={report}", f"sweep_dir={sweep}", "threads=1"], config="evaluate")
    validate_evaluate(cfg)
    with pytest.raises(RunError, match=message):
        evaluate(cfg)
    assert not list(sweep.glob("*/eval.json"))


def _set(run: Path, key: str, value: object) -> None:
    """Set the key path ``key`` (e.g. ``optim.lr``) of the run's config.yaml to ``value``."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    *parents, leaf = key.split(".")
    node = config
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = value
    (run / "config.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("report", ["table1", "fig3", "fig5", "likelihood", "curves"])
def test_a_report_refuses_runs_trained_with_another_setting(tmp_path: Path, report: str) -> None:
    """Seeds 1 and 2 at the default learning rate, seed 3 added into the same folder with
    ``optim.lr=1e-3`` (its folders named by the override): their mean would be no one's number."""
    sweep = make_seeded_sweep(tmp_path / "sweep")
    for run in sweep.iterdir():
        _set(run, "optim.lr", 1e-3 if run.name.endswith("seed=3") else 1e-4)
        _set(run, "model.latent_dim", 10)
    with pytest.raises(
        RunError,
        match=rf"^report={report} refuses to join runs trained with different optim.lr: 0.0001 \(41 runs: "
        r".*; 0.001 \(19 runs: .*; give it the runs of one setting \(a sweep folder each\)$",
    ):
        check_report(report, sweep)
    for run in sweep.glob("*seed=3"):
        _set(run, "optim.lr", 1e-4)
    assert len(check_report(report, sweep)) == 60
    _set(sweep / "divergence=kl_pq,lam=1,likelihood=gaussian,seed=1", "model.latent_dim", 4)
    with pytest.raises(
        RunError, match=r"different model.latent_dim: 10 \(59 runs: .*; 4 \(1 run: divergence=kl_pq"
    ):
        check_report(report, sweep)


def test_the_runs_of_one_divergence_may_differ_only_in_alpha_and_seed(tmp_path: Path) -> None:
    """Within one divergence (one training loss), its α and seeds are what a row of Table 1 and a
    line of Figure 3 run over; anything else of the regulariser makes another series: the first
    commit's intermediate (``divergence.prime=false``) at one α, or a second λ of β-VAE. Across
    divergences the regulariser differs by nature (KL(p‖q) at λ = 2 beside the others at 1)."""
    sweep = make_seeded_sweep(tmp_path / "sweep")
    _set(sweep / "divergence=kl_pq,lam=1,likelihood=gaussian,seed=1", "lam", 2.0)
    # written before divergence.prime existed (absent) or after (True): the same divergence
    _set(sweep / "alpha=0.1,divergence=gjs,seed=1", "divergence.prime", True)
    _set(sweep / "divergence=kl_qp,lam=1,likelihood=gaussian,seed=2", "lam", 1)  # typed lam=1: 1.0
    assert len(check_report("table1", sweep)) == 60
    for run in sweep.glob("alpha=0.3,divergence=gjs,*"):
        _set(run, "divergence.prime", False)
    with pytest.raises(
        RunError,
        match=r"^report=fig3 refuses to join gjs runs \(gaussian likelihood\) trained with different "
        r"divergence.prime: True \(24 runs: .*; False \(3 runs: alpha=0.3,divergence=gjs,seed=1, ",
    ):
        check_report("fig3", sweep)
    for run in sweep.glob("alpha=0.3,divergence=gjs,*"):
        _set(run, "divergence.prime", True)
    _set(sweep / "divergence=beta_vae,lam=1,likelihood=gaussian,seed=2", "lam", 4.0)
    with pytest.raises(
        RunError, match=r"refuses to join beta_vae runs \(gaussian likelihood\) .* different lam: "
    ):
        check_report("table1", sweep)


@pytest.mark.slow
def test_learned_alpha_on_a_sweep_without_learned_runs_says_so_in_one_line(tmp_path: Path) -> None:
    sweep = make_sweep(tmp_path / "sweep")
    with pytest.raises(RunError, match=r"has no run that learned α .* only 21 fixed-α runs; for those use"):
        check_report("learned_alpha", sweep)
    result = run_script("evaluate.py", "report=learned_alpha", f"sweep_dir={sweep}", "threads=1", timeout=120)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 1 and len(errors) == 1 and "has no run that learned α" in errors[0]
    assert "Traceback" not in result.stderr and not (sweep / "reports").exists()


def test_table1_of_two_training_likelihoods_is_one_table_per_loss_and_the_api_refuses_two_datasets(
    tmp_path: Path,
) -> None:
    """A sweep that trained rows under the SSE and the Bernoulli loss (+experiment=paper_rows_mnist)
    gets one Table 1 per loss and the loss table that sets them side by side; the figures, whose
    series would mix them, still refuse."""
    sweep = make_sweep(tmp_path / "sweep")
    single = table1(collect(sweep), tmp_path / "single")
    (sweep / "alpha=0.3,divergence=dgjs").rename(sweep / "alpha=0.3,divergence=dgjs,likelihood=gaussian")
    _run(sweep, "kl_qp", 0.5, 9.0, 9.1, -95, likelihood="bernoulli")
    _run(sweep, "dgjs", 0.3, 7.0, 7.2, -90, likelihood="bernoulli")  # its only α: chosen
    paths = table1(check_report("table1", sweep), tmp_path / "both")
    text = paths["table1.md"].read_text()
    assert text.startswith("# Table 1 — mnist, by training loss")
    loss_rows = {line.split(" | ")[0].lstrip("| "): line for line in text.split("## ")[0].splitlines()}
    columns = (
        "| Divergence | paper | SSE: ours | SSE: ours / paper | Bernoulli: ours | Bernoulli: ours / paper |"
    )
    assert loss_rows["Divergence"] == columns
    assert loss_rows["KL(q(z\\|x) ‖ p(z))"].endswith(
        f"| 8.46 | 9.80 | {9.8 / 8.46:.3f} | 9.10 | {9.1 / 8.46:.3f} |"
    )
    assert loss_rows["JS\\*\\^{Gα}"].endswith(
        f"| 7.34 | 8.20 (α 0.4) | {8.2 / 7.34:.3f} | 7.20 (α 0.3) | {7.2 / 7.34:.3f} |"
    )
    assert loss_rows["β-VAE (β = 4)"].endswith("| 11.75 | — | — | — | — |")  # failed; none under BCE
    sse, bernoulli = text.split("## ")[1:]
    assert sse.startswith("Trained with the SSE loss (likelihood=gaussian)\n")
    assert sse.partition("\n")[2].rstrip() == single["table1.md"].read_text().partition("\n")[2].rstrip()
    assert bernoulli.startswith("Trained with the Bernoulli loss (likelihood=bernoulli)\n")
    assert "2 of 22 runs finished" in bernoulli  # the α each family lacks for one reason, in one entry:
    assert (
        "Missing runs: gjs α=0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9: no run folder; dgjs α=0.1, 0.2, 0.4"
        in (bernoulli)
    )
    lines = paths["table1.csv"].read_text().splitlines()
    assert lines[0] == "likelihood," + single["table1.csv"].read_text().splitlines()[0]
    assert [line.split(",")[:2] for line in lines[1:]] == [
        *[["gaussian", key] for key, _, _ in ROWS],
        *[["bernoulli", key] for key, _, _ in ROWS],
    ]
    assert paths["table1.tex"].read_text().count(r"\begin{tabular}") == 2
    with pytest.raises(
        RunError, match=r"different training likelihoods: gaussian \(21 runs: .*bernoulli \(2 runs"
    ):
        check_report("fig3", sweep)
    _edit(sweep / "divergence=kl_pq,lam=1,likelihood=gaussian", dataset={"name": "fmnist"})
    with pytest.raises(RunError, match="report=table1 refuses to join runs of different datasets"):
        table1(collect(sweep), tmp_path / "reports")


def test_a_corrupt_eval_json_leaves_its_run_out_and_is_named(tmp_path: Path) -> None:
    """The report side of the one rule (evaluate.py redoes a corrupt eval.json: see
    tests/evaluation/test_stale_evaluations.py): a corrupt eval.json counts as none, so the run
    is not shown, and the table says why."""
    sweep = make_sweep(tmp_path / "sweep")
    (sweep / "divergence=kl_qp,lam=1,likelihood=gaussian" / "eval.json").write_text('{"metrics": ')
    (kl_qp,) = [r for r in collect(sweep) if r.divergence == "kl_qp"]
    assert not kl_qp.finished and kl_qp.problem == "eval.json is corrupt"
    text = table1(collect(sweep), sweep / "reports")["table1.md"].read_text()
    assert "| KL(q(z\\|x) ‖ p(z)) | — |" in text
    assert "kl_qp: status completed, eval.json is corrupt" in text


def test_one_corrupt_config_yaml_does_not_stop_the_wandb_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep whose runs logged to W&B, one of them with a corrupt config.yaml: the report lists
    that run as skipped, writes its files and still sends them to the sweep's W&B group."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    sweep = make_sweep(tmp_path / "sweep")
    for config_file in sweep.glob("*/config.yaml"):
        config = yaml.safe_load(config_file.read_text())
        config["logger"] = {"wandb": {"project": "vae-gjs", "group": "g", "mode": "offline", "tags": []}}
        config_file.write_text(yaml.safe_dump(config))
    first = sorted(sweep.glob("*/config.yaml"))[0]
    first.write_text("a: [b\n")
    with caplog.at_level("INFO"):
        paths = write_report("fig3", sweep)
    assert [p.name for p in paths] == ["fig3.png"]
    assert f"Skipping {first.parent.name}: {first} is corrupt" in caplog.text
    assert "Logged fig3 to W&B group 'g'" in caplog.text
    (logged,) = sweep.glob("reports/wandb/offline-run-*/run-*.wandb")
    assert run_summary(logged)["name"] == "g-fig3"
