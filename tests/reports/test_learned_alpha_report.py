"""The learned-α report from synthetic run folders with known numbers."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import yaml
from PIL import Image

from vae_gjs.reports import collect, learned_alpha
from vae_gjs.reports.learned_alpha import alpha_trajectory

#: (family, start) -> (α after each of 3 epochs, test SSE)
LEARNED = {
    ("gjs", 0.1): ([0.15, 0.22, 0.30], 11.0),
    ("gjs", 0.5): ([0.42, 0.36, 0.32], 10.5),
    ("gjs", 0.9): ([0.75, 0.55, 0.34], 10.8),
    ("dgjs", 0.1): ([0.2, 0.3, 0.4], 9.9),
    ("dgjs", 0.5): ([0.5, 0.45, 0.44], 9.7),
}


def _run(
    sweep: Path, divergence: str, alpha: float, test: float, train: float, learned: list[float] | None
) -> Path:
    run = sweep / f"alpha={alpha},divergence={divergence}"
    run.mkdir(parents=True)
    config = {
        "divergence": {
            "_target_": f"vae_gjs.divergences.{divergence}",
            "alpha": alpha,
            "learn_alpha": bool(learned),
        },
        "lam": 1.0,
        "choices": {"dataset": "mnist", "divergence": divergence, "budget": "cpu"},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "status.json").write_text(json.dumps({"status": "completed"}))
    results = {"epochs": 3, "test/rec": test, **({"alpha_learned": learned[-1]} if learned else {})}
    (run / "results.json").write_text(json.dumps(results))
    record = {
        "metrics": {"train/sse": train, "test/sse": test},
        "learned": {"alpha": learned[-1]} if learned else {},
    }
    (run / "eval.json").write_text(json.dumps(record))
    if learned:
        rows = ["epoch,step,train/alpha,train/rec"] + [
            f"{e},{10 * (e + 1)},{a},100" for e, a in enumerate(learned)
        ]
        rows.append("3,30,,")  # the test row: no train/alpha
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def make_sweeps(folder: Path) -> tuple[Path, Path]:
    """A learned-α sweep (5 of its 6 starts) and a fixed-α Table 1 sweep beside it in ``folder``."""
    learned_dir, table1_dir = folder / "learned_alpha", folder / "table1"
    for (family, start), (alphas, test) in LEARNED.items():
        _run(learned_dir, family, start, test, test - 0.5, alphas)
    for alpha in (0.1, 0.3, 0.5):  # fixed α: gjs best on train at 0.3, dgjs at 0.1
        _run(table1_dir, "gjs", alpha, 10 + alpha, 12 - (alpha == 0.3), None)
        _run(table1_dir, "dgjs", alpha, 9 + alpha, 11 - (alpha == 0.1), None)
    return learned_dir, table1_dir


@pytest.fixture
def sweeps(tmp_path: Path) -> tuple[Path, Path]:
    return make_sweeps(tmp_path)


def test_trajectory_starts_at_the_start_and_has_one_point_per_epoch(sweeps: tuple[Path, Path]) -> None:
    record = next(r for r in collect(sweeps[0]) if r.divergence == "gjs" and r.alpha == 0.9)
    assert alpha_trajectory(record) == ([0, 1, 2, 3], [0.9, 0.75, 0.55, 0.34])
    assert record.alpha_learned == 0.34


def test_table_gives_learned_alpha_per_start_next_to_the_best_fixed_alpha(sweeps: tuple[Path, Path]) -> None:
    learned_dir, table1_dir = sweeps
    paths = learned_alpha(collect(learned_dir), learned_dir / "reports", table1_dir)
    rows = list(csv.DictReader(paths["learned_alpha.csv"].open()))
    assert [(r["divergence"], r["start_alpha"], r["learned_alpha"]) for r in rows] == [
        ("gjs", "0.1", "0.300000"),
        ("gjs", "0.5", "0.320000"),
        ("gjs", "0.9", "0.340000"),
        ("dgjs", "0.1", "0.400000"),
        ("dgjs", "0.5", "0.440000"),
    ]
    gjs = rows[0]
    assert float(gjs["family_alpha_mean"]) == pytest.approx(0.32)
    assert float(gjs["family_alpha_sd"]) == pytest.approx(statistics.stdev([0.30, 0.32, 0.34]), abs=1e-6)
    assert gjs["fixed_best_alpha"] == "0.3" and float(gjs["fixed_best_test_sse"]) == pytest.approx(10.3)
    assert rows[3]["fixed_best_alpha"] == "0.1" and float(rows[3]["fixed_best_test_sse"]) == pytest.approx(
        9.1
    )
    assert [float(r["test_sse"]) for r in rows] == [11.0, 10.5, 10.8, 9.9, 9.7]
    text = paths["learned_alpha.md"].read_text()
    assert (
        "| JS\\^{Gα} | 0.320 ± 0.020 | 0.1 → 0.300 (11.00); 0.5 → 0.320 (10.50); "
        "0.9 → 0.340 (10.80) | 0.3 | 10.30 |" in text
    )
    assert "(same dataset, budget and epochs)" in text
    assert "Missing runs: dgjs from α=0.9: no run folder" in text
    with Image.open(paths["learned_alpha.png"]) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 250


@pytest.mark.parametrize("table1", ["not given", "missing folder", "no runs"])
def test_without_a_table1_sweep_the_table_says_so(sweeps: tuple[Path, Path], table1: str) -> None:
    learned_dir, table1_dir = sweeps
    given = {"not given": None, "missing folder": table1_dir / "nowhere", "no runs": table1_dir / "empty"}[
        table1
    ]
    if table1 == "no runs":
        given.mkdir()
    paths = learned_alpha(collect(learned_dir), learned_dir / "reports", given)
    text = paths["learned_alpha.md"].read_text()
    expected = {
        "not given": "no Table 1 sweep given",
        "missing folder": f"table1_dir={given} does not exist",
        "no runs": "has no finished gjs/dgjs runs, so no comparison",
    }[table1]
    assert expected in text
    assert "| JS\\^{Gα} | 0.320 ± 0.020 |" in text and text.count("| — | — |") == 2
