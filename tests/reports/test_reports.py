"""Table 1 and Figures 3/5 from run folders alone (synthetic folders with known numbers)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from vae_gjs.errors import RunError
from vae_gjs.reports import PaperTable, collect, figure3, figure5, table1, write_report
from vae_gjs.reports.likelihood import likelihood_report
from vae_gjs.reports.markdown import escape
from vae_gjs.reports.table1 import ALPHAS, ROWS


def _run(
    sweep: Path,
    divergence: str,
    alpha: float,
    train: float,
    test: float,
    log_px: float,
    status="completed",
    lam: float = 1.0,
    likelihood: str = "gaussian",
    seed: int | None = None,
) -> Path:
    """A run folder with known numbers (``seed``: recorded in config.yaml and the folder name)."""
    run = sweep / (
        (
            f"alpha={alpha},divergence={divergence}"
            if divergence in ("gjs", "dgjs")
            else f"divergence={divergence},lam={lam:.4g},likelihood={likelihood}"
        )
        + (f",seed={seed}" if seed is not None else "")
    )
    run.mkdir(parents=True)
    skew = {"alpha": alpha} if divergence in ("gjs", "dgjs") else {}
    config = {
        "alpha": 0.5,  # the top-level default: only the divergence's own α counts
        "divergence": {"_target_": f"vae_gjs.divergences.{divergence}", **skew},
        "lam": lam,
        "likelihood": likelihood,
        "choices": {"dataset": "mnist", "divergence": divergence, "budget": "cpu"},
        **({"seed": seed} if seed is not None else {}),
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "status.json").write_text(json.dumps({"status": status}))
    (run / "results.json").write_text(json.dumps({"epochs": 8, "test/rec": test}))
    metrics = {
        "train/sse": train,
        "test/sse": test,
        "train/div": 3.0 + alpha,
        "test/div": 3.1 + alpha,
        "test/log_px": log_px,
        "test/log_px_ci_low": log_px - 1,
        "test/log_px_ci_high": log_px + 1,
    }
    (run / "eval.json").write_text(json.dumps({"metrics": metrics}))
    return run


def make_sweep(folder: Path) -> Path:
    """A Table 1 sweep of one seed per cell in ``folder``: known best α on train, a failed β-VAE run
    and no MMD run."""
    for alpha in ALPHAS:
        # gjs: best on train at 0.2 (test 9.5) though 0.3 is best on test (8.5): the train choice must win
        _run(
            folder,
            "gjs",
            alpha,
            train=10 + abs(alpha - 0.2) * 10,
            test=9 + abs(alpha - 0.3) * 5 - (alpha == 0.3) * 0.5,
            log_px=-100 - alpha,
        )
        _run(
            folder,
            "dgjs",
            alpha,
            train=8 + abs(alpha - 0.4) * 10,
            test=8.2 + abs(alpha - 0.4) * 10,
            log_px=-90 - alpha,
        )
    _run(folder, "kl_qp", 0.5, 9.5, 9.8, -95)
    _run(folder, "kl_pq", 0.5, 12.0, 12.5, -99)
    _run(folder, "beta_vae", 0.5, 13.0, 13.2, -97, status="failed")
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return make_sweep(tmp_path)


def test_table1_selects_alpha_on_training_error_and_compares_with_the_paper(sweep: Path) -> None:
    paths = table1(collect(sweep), sweep / "reports")
    rows = {row["row"]: row for row in csv.DictReader(paths["table1.csv"].open())}
    assert rows["gjs_best"]["ours_alpha"] == "0.2" and float(
        rows["gjs_best"]["ours_test_sse"]
    ) == pytest.approx(9.5)
    assert rows["dgjs_best"]["ours_alpha"] == "0.4" and float(
        rows["dgjs_best"]["ours_test_sse"]
    ) == pytest.approx(8.2)
    assert float(rows["gjs_0.5"]["ours_test_sse"]) == pytest.approx(10.0)
    assert float(rows["kl_qp"]["ratio"]) == pytest.approx(9.8 / 8.46, abs=1e-4)
    assert rows["kl_qp"]["paper"] == "8.46" and rows["dgjs_best"]["paper_alpha"] == "0.3"
    assert rows["beta_vae"]["ours_test_sse"] == "—"  # failed run: not used, reported missing
    text = paths["table1.md"].read_text()
    assert r"| KL(q(z\|x) ‖ p(z)) | 9.80 |  | 8.46 |  | 1.158 |" in text
    assert "beta_vae: status failed" in text and "mmd_reference: no run folder" in text
    assert "budget cpu (8 epochs)" in text
    assert r"\begin{tabular}" in paths["table1.tex"].read_text()
    # a failed run's error (status.json) says why it is missing
    (failed,) = (record.path for record in collect(sweep) if record.status == "failed")
    (failed / "status.json").write_text(
        json.dumps({"status": "failed", "error": "non-finite loss\nat step 7"})
    )
    text = table1(collect(sweep), sweep / "reports")["table1.md"].read_text()
    assert "beta_vae: status failed, 0 epochs trained (non-finite loss at step 7); mmd_reference" in text


def test_paper_numbers_ship_with_their_source() -> None:
    paper = PaperTable.load()
    assert "NeurIPS 2020" in paper.source
    assert paper.values[("dgjs_best", "chairs")] == 11.64 and paper.alphas[("gjs_best", "dsprites")] == 0.1
    assert len(paper.values) == 7 * 4


def test_figures_are_written_as_pngs(sweep: Path) -> None:
    records = collect(sweep)
    for path in (figure3(records, sweep / "fig3.png"), figure5(records, sweep / "fig5.png")):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 400


def test_records_take_alpha_from_the_divergence_not_the_top_level_default(sweep: Path) -> None:
    records = collect(sweep)
    baselines = [r for r in records if r.divergence not in ("gjs", "dgjs")]
    assert baselines and all(math.isnan(r.alpha) for r in baselines)
    assert sorted(r.alpha for r in records if r.divergence == "gjs") == list(ALPHAS)


def cells(line: str) -> list[str]:
    """The cells of a Markdown table line as a GitHub/CommonMark renderer splits them: at pipes
    not preceded by a backslash; then backslash escapes are undone."""
    inner = line.strip().removeprefix("|")
    inner = inner[:-1] if re.search(r"(?<!\\)\|$", inner) else inner
    return [re.sub(r"\\(.)", r"\1", part.strip()) for part in re.split(r"(?<!\\)\|", inner)]


def test_table1_markdown_rows_have_the_header_cell_count_and_labels_survive(sweep: Path) -> None:
    """A bare ``|`` (as in KL(q(z|x) ‖ p(z))) would split a cell and shift the paper's number
    under "α (paper)": parse the written Markdown as a renderer splits it, at unescaped pipes."""
    text = table1(collect(sweep), sweep / "reports")["table1.md"].read_text()
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header, rule, *body = (cells(line) for line in lines)
    assert header == ["Divergence", "ours", "α (ours)", "paper", "α (paper)", "ours / paper"]
    assert len(rule) == len(header) and len(body) == len(ROWS)
    assert all(len(row) == len(header) for row in body), [r for r in body if len(r) != len(header)]
    assert [row[0] for row in body] == [label for _, label, _ in ROWS]
    by_label = {row[0]: row for row in body}
    assert by_label["KL(q(z|x) ‖ p(z))"][3] == "8.46" and by_label["KL(q(z|x) ‖ p(z))"][4] == ""
    assert by_label["JS*^{Gα}"][2] == "0.4" and by_label["JS*^{Gα}"][4] == "0.3"


@pytest.mark.parametrize("text", ["a|b", "x*y*z", "_under_", "[link](x)", "<b>", "back\\slash", "a ~~b~~"])
def test_markdown_escape_round_trips_through_a_cell(text: str) -> None:
    line = "| " + escape(text) + " | 2 |"
    assert cells(line) == [text, "2"]
    assert escape(text) != text


def test_figure3_legend_lies_outside_the_panels_and_titles_name_dataset_and_budget(
    sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vae_gjs.reports import figures

    kept = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: kept.setdefault(Path(path).name, fig))
    records = collect(sweep)
    figures.figure3(records, sweep / "fig3.png")
    figures.figure5(records, sweep / "fig5.png")
    fig3, fig5 = kept["fig3.png"], kept["fig5.png"]
    renderer = fig3.canvas.get_renderer()
    (legend,) = fig3.legends
    box = legend.get_window_extent(renderer)
    assert all(not box.overlaps(ax.get_window_extent(renderer)) for ax in fig3.axes)
    labels = [text.get_text() for text in legend.get_texts()]
    assert "KL(q‖p) (test)" in labels and len(labels) == len(set(labels)) == 8
    js, js_star = (label for _, label in figures.FAMILIES)
    assert labels[:4] == [f"{js} (train)", f"{js} (test)", f"{js_star} (train)", f"{js_star} (test)"]
    lines = [line for ax in fig3.axes for line in ax.get_lines()]
    family_colours = {line.get_color() for line in lines if line.get_label().startswith(("JS", "$JS"))}
    assert family_colours == {"tab:blue", "tab:orange"}  # the two families told apart, as in Figure 5
    assert "MNIST, budget cpu (8 epochs)" in fig3._suptitle.get_text()
    (ax5,) = fig5.axes
    assert "MNIST, budget cpu (8 epochs)" in ax5.get_title()
    box5 = ax5.get_legend().get_window_extent(fig5.canvas.get_renderer())
    assert not box5.overlaps(ax5.get_window_extent(fig5.canvas.get_renderer()))


def test_figure5_under_each_listed_likelihood_plots_that_likelihoods_evidence(
    sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report=fig5 'evidence_likelihood=[gaussian,bernoulli]': one figure per likelihood, each
    titled with it and plotting the runs' log p(x) under it (eval.json's evidence_by_likelihood)."""
    from vae_gjs.reports import figures

    for run in sweep.iterdir():
        record = json.loads((run / "eval.json").read_text())
        gaussian = record["metrics"]["test/log_px"]
        record["evidence"] = {"likelihood": "gaussian"}
        record["evidence_by_likelihood"] = {
            name: {"mean": mean, "ci95": [mean - 1, mean + 1]}
            for name, mean in (("gaussian", gaussian), ("bernoulli", gaussian / 3))
        }
        (run / "eval.json").write_text(json.dumps(record))
    kept = {}
    monkeypatch.setattr(
        figures, "save_figure", lambda fig, path: kept.setdefault(Path(path).name, fig) and Path(path)
    )
    paths = write_report("fig5", sweep, ["gaussian", "bernoulli"])
    assert [p.name for p in paths] == ["fig5_gaussian.png", "fig5_bernoulli.png"]
    for name, scale in (("gaussian", 1), ("bernoulli", 3)):
        (ax,) = kept[f"fig5_{name}.png"].axes
        assert f"({name} decoder likelihood)" in ax.get_title()
        dgjs = next(c for c in ax.containers if c.get_label() == dict(figures.FAMILIES)["dgjs"])
        assert list(dgjs.lines[0].get_ydata()) == pytest.approx([(-90 - a) / scale for a in ALPHAS])


def make_likelihood_sweeps(folder: Path) -> tuple[Path, Path]:
    """The likelihood experiment's baseline runs under three training losses (and one under a
    fourth weight), and a Table 1 sweep whose SSE-trained baselines join them."""
    experiment, table1_sweep = folder / "likelihood", folder / "table1"
    for divergence, lam, sse in (("kl_qp", 1.0, 10.0), ("kl_pq", 1.0, 13.7), ("beta_vae", 4.0, 13.9)):
        _run(experiment, divergence, 0.5, sse, sse, -100, likelihood="bernoulli", lam=lam)
        _run(experiment, divergence, 0.5, sse, sse / 2, -100, lam=lam / 255)
        _run(table1_sweep, divergence, 0.5, sse, 2 * sse, -100, lam=lam)
    _run(experiment, "kl_qp", 0.5, 1.0, 1.0, -100, likelihood="bernoulli", lam=3.0)  # another weight
    _run(table1_sweep, "kl_pq", 0.5, 1.0, 1.0, -100, likelihood="bernoulli", status="failed")  # not counted
    return experiment, table1_sweep


def test_likelihood_report_names_each_training_loss_and_its_ratios_against_the_papers(tmp_path: Path) -> None:
    experiment, table1_sweep = make_likelihood_sweeps(tmp_path)
    paths = likelihood_report(collect(experiment), experiment / "reports", table1_sweep)
    lines = {
        line.split(" | ")[0].lstrip("| "): line for line in paths["likelihood.md"].read_text().splitlines()
    }
    # β-VAE / KL(q‖p) = 1.39, KL(p‖q) / KL(q‖p) = 1.37: the same ratios under each training loss here
    for name in ("Bernoulli", "255·SSE", "SSE"):
        assert "| 1.39 | 1.37 |" in lines[name], lines[name]
    assert "| 10.00 | 13.70 | 13.90 |" in lines["Bernoulli"] and "| 20.00 | 27.40 | 27.80 |" in lines["SSE"]
    paper = 11.75 / 8.46, 11.61 / 8.46  # Table 1, MNIST
    distance = abs(math.log(1.39 / paper[0])) + abs(math.log(1.37 / paper[1]))
    assert f"| {distance:.3f} |" in lines["Bernoulli"]
    assert "| 1.00 | — | — | — | — | — |" in lines["bernoulli, λ × 3"]  # its own row, not mixed in
    assert lines["paper"].startswith("| paper | 8.46 | 11.61 | 11.75 | 1.39 | 1.37 | 0 |")
    rows = list(csv.DictReader(paths["likelihood.csv"].open()))
    assert len(rows) == 10 and {r["hypothesis"] for r in rows} == {
        "Bernoulli",
        "255·SSE",
        "SSE",
        "bernoulli, λ × 3",
    }


def test_likelihood_report_refuses_two_runs_of_one_cell(tmp_path: Path) -> None:
    _run(tmp_path / "a", "kl_qp", 0.5, 10.0, 10.0, -100)
    _run(tmp_path / "b", "kl_qp", 0.5, 11.0, 11.0, -100)
    with pytest.raises(
        RunError, match=r"2 finished kl_qp \(trained with SSE\) runs with seed None .*keep one"
    ):
        likelihood_report(collect(tmp_path / "a"), tmp_path / "reports", tmp_path / "b")


def test_table1_refuses_two_runs_of_one_baseline_row(sweep: Path) -> None:
    _run(sweep, "kl_qp", 0.5, 9.0, 9.1, -95, lam=1 / 255)  # a second KL(q‖p) run of one seed and loss
    with pytest.raises(RunError, match=r"2 finished kl_qp runs .*report=likelihood"):
        table1(collect(sweep), sweep / "reports")
