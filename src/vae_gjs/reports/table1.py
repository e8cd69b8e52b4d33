"""Table 1: final test reconstruction error per regulariser, ours next to the paper's.

The best α of JS^{Gα} and JS*^{Gα} is chosen on the *training* reconstruction error (the paper
argues train and test track each other, so no validation set is needed) and reported with its
test error.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vae_gjs.errors import RunError
from vae_gjs.reports.collect import RunRecord
from vae_gjs.reports.markdown import table as md_table
from vae_gjs.reports.text import csv_table, fmt, missing_line, write_texts

ALPHAS = tuple(round(0.1 * i, 1) for i in range(1, 10))
#: The runs of one dataset's Table 1 sweep: (divergence, α or None).
EXPECTED_RUNS = (
    *[(name, a) for name in ("gjs", "dgjs") for a in ALPHAS],
    *[(name, None) for name in ("kl_qp", "kl_pq", "beta_vae", "mmd_reference")],
)


@dataclass(frozen=True)
class PaperTable:
    """The published Table 1 (shipped as ``paper_table1.csv``, source in its first line)."""

    source: str
    values: dict[tuple[str, str], float]
    alphas: dict[tuple[str, str], float]

    @classmethod
    def load(cls) -> PaperTable:
        text = resources.files("vae_gjs.reports").joinpath("paper_table1.csv").read_text(encoding="utf-8")
        source, _, body = text.partition("\n")
        values, alphas = {}, {}
        for row in csv.DictReader(io.StringIO(body)):
            for dataset in ("mnist", "fmnist", "dsprites", "chairs"):
                values[(row["row"], dataset)] = float(row[dataset])
                if row[f"{dataset}_alpha"]:
                    alphas[(row["row"], dataset)] = float(row[f"{dataset}_alpha"])
        return cls(source.lstrip("# "), values, alphas)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    run: RunRecord | None
    paper: float
    paper_alpha: float | None
    chosen_alpha: float | None

    @property
    def ours(self) -> float:
        return self.run.test_sse if self.run is not None else math.nan

    @property
    def ratio(self) -> float:
        return self.ours / self.paper


def _only(name: str) -> Callable[[list[RunRecord]], tuple[RunRecord | None, float | None]]:
    def pick(records: list[RunRecord]) -> tuple[RunRecord | None, float | None]:
        runs = [r for r in records if r.divergence == name]
        if len(runs) > 1:  # e.g. trained with another likelihood or λ: not one Table 1 row
            raise RunError(
                f"{len(runs)} finished {name} runs ({', '.join(r.path.name for r in runs)}); Table 1 "
                "shows one per row (report=likelihood compares training losses)"
            )
        return (runs[0] if runs else None), None

    return pick


def _at_alpha(name: str, alpha: float) -> Callable[[list[RunRecord]], tuple[RunRecord | None, float | None]]:
    def pick(records: list[RunRecord]) -> tuple[RunRecord | None, float | None]:
        return next((r for r in records if r.divergence == name and math.isclose(r.alpha, alpha)), None), None

    return pick


def best_on_train(records: list[RunRecord], name: str) -> RunRecord | None:
    """The run of divergence ``name`` with the lowest training error (how Table 1 picks α)."""
    candidates = [r for r in records if r.divergence == name and not math.isnan(r.train_sse)]
    return min(candidates, key=lambda r: r.train_sse, default=None)


def _best_on_train(name: str) -> Callable[[list[RunRecord]], tuple[RunRecord | None, float | None]]:
    def pick(records: list[RunRecord]) -> tuple[RunRecord | None, float | None]:
        best = best_on_train(records, name)
        return best, best.alpha if best is not None else None

    return pick


ROWS: Sequence[tuple[str, str, Callable[[list[RunRecord]], tuple[RunRecord | None, float | None]]]] = (
    ("kl_qp", "KL(q(z|x) ‖ p(z))", _only("kl_qp")),
    ("kl_pq", "KL(p(z) ‖ q(z|x))", _only("kl_pq")),
    ("beta_vae", "β-VAE (β = 4)", _only("beta_vae")),
    ("mmd", "MMD (λ = 500)", _only("mmd_reference")),
    ("gjs_0.5", "JS^{G0.5}", _at_alpha("gjs", 0.5)),
    ("gjs_best", "JS^{Gα}", _best_on_train("gjs")),
    ("dgjs_best", "JS*^{Gα}", _best_on_train("dgjs")),
)


def missing_runs(records: list[RunRecord]) -> list[str]:
    """Expected runs of the sweep that are absent, unfinished or not evaluated."""
    missing = []
    for name, alpha in EXPECTED_RUNS:
        match = [
            r for r in records if r.divergence == name and (alpha is None or math.isclose(r.alpha, alpha))
        ]
        label = f"{name} α={alpha}" if alpha is not None else name
        if not match:
            missing.append(f"{label}: no run folder")
        elif not match[0].finished:
            missing.append(f"{label}: status {match[0].status}, evaluated={match[0].evaluated}")
    return missing


def build_rows(records: list[RunRecord], dataset: str, paper: PaperTable) -> list[Row]:
    usable = [r for r in records if r.finished]
    rows = []
    for key, label, pick in ROWS:
        run, alpha = pick(usable)
        rows.append(
            Row(key, label, run, paper.values[(key, dataset)], paper.alphas.get((key, dataset)), alpha)
        )
    return rows


def _alpha(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def markdown(rows: list[Row], dataset: str, records: list[RunRecord], paper: PaperTable) -> str:
    budgets = sorted({f"{r.budget} ({r.epochs} epochs)" for r in records if r.finished})
    lines = [
        f"# Table 1 — {dataset}: test reconstruction error (per-image SSE, z = μ)",
        "",
        f"Ours: budget {', '.join(budgets) or '—'}, {sum(r.finished for r in records)} of "
        f"{len(EXPECTED_RUNS)} runs finished and evaluated. Best α chosen on the training error.",
        f"Paper: {paper.source}",
        "",
        *md_table(
            ("Divergence", "ours", "α (ours)", "paper", "α (paper)", "ours / paper"),
            [
                (
                    row.label,
                    fmt(row.ours),
                    _alpha(row.chosen_alpha),
                    fmt(row.paper),
                    _alpha(row.paper_alpha),
                    fmt(row.ratio, 3),
                )
                for row in rows
            ],
            align="lrrrrr",
        ),
    ]
    missing = missing_runs(records)
    lines += ["", missing_line(missing)]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[Row], dataset: str) -> str:
    header = (
        "row",
        "label",
        "dataset",
        "ours_test_sse",
        "ours_train_sse",
        "ours_alpha",
        "paper",
        "paper_alpha",
        "ratio",
        "run",
    )
    return csv_table(
        header,
        (
            (
                row.key,
                row.label,
                dataset,
                fmt(row.ours, 4),
                fmt(row.run.train_sse if row.run else None, 4),
                _alpha(row.chosen_alpha),
                row.paper,
                _alpha(row.paper_alpha),
                fmt(row.ratio, 4),
                row.run.path.name if row.run else "",
            )
            for row in rows
        ),
    )


def latex(rows: list[Row], dataset: str) -> str:
    def label(text: str) -> str:
        return (
            text.replace("‖", r"\|")
            .replace("β", r"$\beta$")
            .replace("λ", r"$\lambda$")
            .replace("JS*^{Gα}", r"$\mathrm{JS}_*^{G_\alpha}$")
            .replace("JS^{Gα}", r"$\mathrm{JS}^{G_\alpha}$")
            .replace("JS^{G0.5}", r"$\mathrm{JS}^{G_{0.5}}$")
        )

    def value(number: float, alpha: float | None, digits: int = 2) -> str:
        return fmt(number, digits) + (rf" ($\alpha={_alpha(alpha)}$)" if alpha is not None else "")

    body = [
        f"{label(r.label)} & {value(r.ours, r.chosen_alpha)} & {value(r.paper, r.paper_alpha)} & "
        + fmt(r.ratio, 3)
        + r" \\"
        for r in rows
    ]
    return "\n".join(
        [
            r"\begin{tabular}{lrrr}",
            r"\toprule",
            rf"Divergence & ours ({dataset}) & paper & ours/paper \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )


def table1(records: list[RunRecord], out_dir: str | Path, dataset: str | None = None) -> dict[str, Path]:
    """Write ``table1.md``, ``table1.csv`` and ``table1.tex`` into ``out_dir``; returns their paths."""
    datasets = {r.dataset for r in records}
    dataset = dataset or (datasets.pop() if len(datasets) == 1 else None)
    if dataset is None:
        raise ValueError(f"the sweep mixes datasets {sorted({r.dataset for r in records})}; pass one")
    paper = PaperTable.load()
    rows = build_rows(records, dataset, paper)
    texts = {
        "table1.md": markdown(rows, dataset, records, paper),
        "table1.csv": csv_text(rows, dataset),
        "table1.tex": latex(rows, dataset),
    }
    return write_texts(out_dir, texts)
