"""report=curves: the training loss's two terms per epoch from each run's metrics.csv, running
runs included, nothing evaluated."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import compose_train
from tests.reports.test_reports import _run
from vae_gjs.errors import RunError
from vae_gjs.reports import collect
from vae_gjs.reports import curves as curves_module
from vae_gjs.reports.collect import epoch_series
from vae_gjs.reports.curves import run_label, training_curves


def _metrics(run: Path, rec: list[float], div: list[float], val_rec: list[float] | None = None) -> None:
    """metrics.csv as the CSV logger writes it: one row per epoch, then the test row."""
    columns = ["epoch", "step", "train/rec", "train/div", "val/rec", "test/rec"]
    with (run / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for epoch, (r, d) in enumerate(zip(rec, div, strict=True)):
            val = {"val/rec": val_rec[epoch]} if val_rec else {}
            writer.writerow({"epoch": epoch, "step": 10 * (epoch + 1), "train/rec": r, "train/div": d, **val})
        writer.writerow({"epoch": len(rec) - 1, "step": 10 * len(rec), "test/rec": 9.9})


def _running(run: Path, max_epochs: int) -> None:
    (run / "status.json").write_text(json.dumps({"status": "running"}))
    config = run / "config.yaml"
    config.write_text(config.read_text() + f"trainer:\n  max_epochs: {max_epochs}\n")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """KL(q‖p) trained for 3 epochs with a validation split, JS^{G0.2} running (2 of 100
    epochs) under the Bernoulli loss, and a run that has logged nothing yet; none evaluated."""
    folder = tmp_path / "sweep"
    kl = _run(folder, "kl_qp", 0.5, 9.5, 9.8, -95)
    _metrics(kl, [40.0, 30.0, 25.0], [5.0, 7.0, 8.0], val_rec=[41.0, 31.0, 27.0])
    js = _run(folder, "gjs", 0.2, 9.0, 9.1, -96)
    config = js / "config.yaml"
    config.write_text(config.read_text().replace("likelihood: gaussian", "likelihood: bernoulli"))
    _metrics(js, [120.0, 100.0], [4.0, 4.5])
    _running(js, 100)
    _running(_run(folder, "dgjs", 0.4, 9.0, 9.1, -96), 100)
    for run in folder.iterdir():
        (run / "eval.json").unlink()
    return folder


def test_epoch_series_reads_a_column_against_epochs_trained(sweep: Path) -> None:
    kl = next(r for r in collect(sweep) if r.divergence == "kl_qp")
    assert epoch_series(kl, "train/rec") == ([1, 2, 3], [40.0, 30.0, 25.0])  # not the test row
    assert epoch_series(kl, "val/rec") == ([1, 2, 3], [41.0, 31.0, 27.0])
    assert epoch_series(kl, "train/alpha") == ([], [])


def test_the_figure_draws_every_run_that_logged_an_epoch_per_training_loss(
    sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, Any] = {}

    def keep(fig: Any, path: Path) -> Path:
        drawn["fig"] = fig
        Path(path).write_bytes(b"")
        return Path(path)

    monkeypatch.setattr(curves_module, "save_figure", keep)
    records = collect(sweep)
    training_curves(records, sweep / "curves.png")
    (sse_rec, sse_div), (bce_rec, bce_div) = [drawn["fig"].axes[i : i + 2] for i in (0, 2)]
    assert "SSE loss (likelihood=gaussian)" in sse_rec.get_title()
    assert "Bernoulli loss (likelihood=bernoulli)" in bce_rec.get_title()
    train, val = sse_rec.get_lines()  # KL(q‖p) and its validation split, dashed
    assert list(train.get_xdata()) == [1, 2, 3] and list(train.get_ydata()) == [40.0, 30.0, 25.0]
    assert list(val.get_ydata()) == [41.0, 31.0, 27.0] and val.get_linestyle() == "--"
    assert list(sse_div.get_lines()[0].get_ydata()) == [5.0, 7.0, 8.0]
    (js,) = bce_div.get_lines()
    assert list(js.get_ydata()) == [4.0, 4.5] and js.get_label().endswith("(running: 2 of 100 epochs)")
    assert "dashed: the validation split" in drawn["fig"].texts[0].get_text()


def test_run_labels_name_the_cell_the_seed_and_how_far_a_running_run_got(sweep: Path) -> None:
    kl, js, _ = (next(r for r in collect(sweep) if r.divergence == d) for d in ("kl_qp", "gjs", "dgjs"))
    assert run_label(kl, seeds=False, epochs=3) == "KL(q‖p)"
    assert run_label(js, seeds=False, epochs=2) == "JS$^{G_{0.2}}$ (running: 2 of 100 epochs)"
    seeded = collect(_run(sweep.parent / "seeded", "beta_vae", 0.5, 9.0, 9.1, -96, lam=4.0, seed=2).parent)
    assert run_label(seeded[0], seeds=True, epochs=8) == "β-VAE (β = 4), seed 2"


def test_evaluate_report_curves_evaluates_nothing_and_writes_the_png(sweep: Path) -> None:
    from vae_gjs.config import validate_evaluate
    from vae_gjs.tasks.evaluate import evaluate

    cfg = compose_train(["report=curves", f"sweep_dir={sweep}", "threads=1"], config="evaluate")
    validate_evaluate(cfg)
    (path,) = evaluate(cfg)
    assert path == sweep / "reports" / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(sweep.glob("*/eval.json"))  # the finished KL(q‖p) run was not evaluated


def test_a_sweep_without_a_logged_epoch_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    _run(folder, "kl_qp", 0.5, 9.5, 9.8, -95)
    with pytest.raises(RunError, match=r"^report=curves: no run in the sweep has logged an epoch"):
        training_curves(collect(folder), folder / "curves.png")


def test_a_cell_keeps_its_colour_and_the_seed_of_most_runs_is_solid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 1234 of two cells and seed 1 of one: the two KL(q‖p) seeds share a colour, the seed
    of most runs (1234) is drawn solid, the other dotted."""
    folder = tmp_path / "sweep"
    for divergence, seed in (("kl_qp", 1234), ("mmd_reference", 1234), ("kl_qp", 1)):
        _metrics(_run(folder, divergence, 0.5, 9.5, 9.8, -95, seed=seed), [40.0, 30.0], [5.0, 7.0])
    drawn: dict[str, Any] = {}
    monkeypatch.setattr(curves_module, "save_figure", lambda fig, path: drawn.setdefault("fig", fig))
    training_curves(collect(folder), folder / "curves.png")
    lines = {line.get_label(): line for line in drawn["fig"].axes[0].get_lines()}
    kl_main, kl_other, mmd = lines["KL(q‖p), seed 1234"], lines["KL(q‖p), seed 1"], lines["MMD, seed 1234"]
    assert kl_main.get_color() == kl_other.get_color() != mmd.get_color()
    assert (kl_main.get_linestyle(), kl_other.get_linestyle(), mmd.get_linestyle()) == ("-", ":", "-")
