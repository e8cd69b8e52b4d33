"""The learned-α report (``+experiment=learned_alpha``): α against epoch for every start, and the
learned α with its test error next to the best fixed α of the Table 1 sweep (docs/learned_alpha.md).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord, collect
from vae_gjs.reports.figures import FAMILIES
from vae_gjs.reports.markdown import table as md_table
from vae_gjs.reports.table1 import best_on_train
from vae_gjs.reports.text import csv_table, fmt, missing_line, write_texts

#: The starting values of α in conf/experiment/learned_alpha.yaml.
STARTS = (0.1, 0.5, 0.9)
#: The families' names in the Markdown table (the figure uses the mathtext ones of FAMILIES).
LABELS = {"gjs": "JS^{Gα}", "dgjs": "JS*^{Gα}"}


def alpha_trajectory(record: RunRecord) -> tuple[list[int], list[float]]:
    """α against epochs trained: the start at 0, then ``train/alpha`` of metrics.csv after each
    epoch (logged at the epoch's end, so epoch e's row is α after e + 1 epochs)."""
    from vae_gjs.loggers import read_metrics  # imports Lightning: only when a report is built

    path = record.path / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    points = [
        (int(r["epoch"]) + 1, r["train/alpha"])
        for r in rows
        if not math.isnan(r.get("train/alpha", math.nan))
    ]
    return [0] + [e for e, _ in points], [record.alpha] + [a for _, a in points]


@dataclass(frozen=True)
class FamilyRow:
    """One divergence family of the report: its learned-α runs and the Table 1 comparison."""

    family: str
    label: str
    runs: list[RunRecord]
    fixed: RunRecord | None

    @property
    def learned(self) -> list[float]:
        return [r.alpha_learned for r in self.runs if not math.isnan(r.alpha_learned)]

    @property
    def alpha_mean(self) -> float:
        return statistics.fmean(self.learned) if self.learned else math.nan

    @property
    def alpha_sd(self) -> float:
        """Sample standard deviation over the starts (NaN with fewer than two)."""
        return statistics.stdev(self.learned) if len(self.learned) > 1 else math.nan


def _table1_note(table1_dir: str | Path | None, table1: list[RunRecord], learned: list[RunRecord]) -> str:
    if table1_dir is None:
        return "Best fixed α: no Table 1 sweep given (add table1_dir=multirun/table1/<dataset>/<budget>)."
    if not Path(table1_dir).is_dir():
        return f"Best fixed α: table1_dir={table1_dir} does not exist, so no comparison."
    if not table1:
        return f"Best fixed α: {table1_dir} has no finished gjs/dgjs runs, so no comparison."
    ours = {(r.dataset, r.budget, r.epochs) for r in learned}
    theirs = {(r.dataset, r.budget, r.epochs) for r in table1}
    same = "same dataset, budget and epochs" if ours == theirs else f"NOT the same runs: {sorted(theirs)}"
    return (
        f"Best fixed α: the Table 1 sweep {table1_dir}, chosen on the training error among its "
        f"{len(table1)} finished JS^Gα/JS*^Gα runs ({same})."
    )


def _missing(records: list[RunRecord]) -> list[str]:
    missing = []
    for family, _ in FAMILIES:
        for start in STARTS:
            match = [r for r in records if r.divergence == family and math.isclose(r.alpha, start)]
            if not match:
                missing.append(f"{family} from α={start}: no run folder")
            elif not match[0].finished:
                missing.append(
                    f"{family} from α={start}: status {match[0].status}, evaluated={match[0].evaluated}"
                )
    return missing


def markdown(rows: list[FamilyRow], records: list[RunRecord], note: str) -> str:
    datasets = ", ".join(sorted({r.dataset for r in records})) or "—"
    budgets = ", ".join(sorted({f"{r.budget} ({r.epochs} epochs)" for r in records if r.finished})) or "—"
    lines = [
        f"# Learned α — {datasets}: learned skew and test reconstruction error (per-image SSE, z = μ)",
        "",
        f"Budget {budgets}; {sum(r.finished for r in records)} of {len(FAMILIES) * len(STARTS)} runs "
        "finished and evaluated. Learned α: mean ± sample sd over the starts.",
        note,
        "",
        *md_table(
            (
                "Divergence",
                "learned α (mean ± sd)",
                "per start: α₀ → α (test SSE)",
                "best fixed α",
                "its test SSE",
            ),
            [
                (
                    row.label,
                    f"{fmt(row.alpha_mean, 3)} ± {fmt(row.alpha_sd, 3)}",
                    "; ".join(
                        f"{r.alpha:g} → {fmt(r.alpha_learned, 3)} ({fmt(r.test_sse)})" for r in row.runs
                    )
                    or "—",
                    f"{row.fixed.alpha:g}" if row.fixed else "—",
                    fmt(row.fixed.test_sse) if row.fixed else "—",
                )
                for row in rows
            ],
            align="lrlrr",
        ),
    ]
    missing = _missing(records)
    lines += ["", missing_line(missing)]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[FamilyRow]) -> str:
    header = (
        "divergence",
        "start_alpha",
        "learned_alpha",
        "test_sse",
        "train_sse",
        "epochs",
        "family_alpha_mean",
        "family_alpha_sd",
        "fixed_best_alpha",
        "fixed_best_test_sse",
        "run",
    )
    return csv_table(
        header,
        (
            (
                row.family,
                f"{run.alpha:g}",
                fmt(run.alpha_learned, 6),
                fmt(run.test_sse, 4),
                fmt(run.train_sse, 4),
                run.epochs,
                fmt(row.alpha_mean, 6),
                fmt(row.alpha_sd, 6),
                f"{row.fixed.alpha:g}" if row.fixed else "",
                fmt(row.fixed.test_sse, 4) if row.fixed else "",
                run.path.name,
            )
            for row in rows
            for run in row.runs
        ),
    )


def figure(rows: list[FamilyRow], path: str | Path) -> Path:
    """α against epochs trained, one panel per family and one line per start; the best fixed α
    of the Table 1 sweep as a dashed line where there is one."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        for run in row.runs:
            epochs, alphas = alpha_trajectory(run)
            ax.plot(epochs, alphas, marker="o", markersize=3, label=f"start α = {run.alpha:g}")
        if row.fixed is not None:
            ax.axhline(row.fixed.alpha, ls="--", color="grey", label=f"best fixed α = {row.fixed.alpha:g}")
        ax.set_title(dict(FAMILIES)[row.family])
        ax.set_xlabel("epochs trained")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if row.runs or row.fixed:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    axes[0][0].set_ylabel("α")
    fig.suptitle("Learned α against epoch")
    fig.tight_layout()
    return save_figure(fig, path)


def learned_alpha(
    records: list[RunRecord], out_dir: str | Path, table1_dir: str | Path | None = None
) -> dict[str, Path]:
    """Write ``learned_alpha.md``, ``learned_alpha.csv`` and ``learned_alpha.png`` into
    ``out_dir`` from the runs of a learned-α sweep; ``table1_dir``: the fixed-α sweep of the same
    dataset and budget, whose best α (on the training error, as in Table 1) is shown alongside."""
    table1 = []
    if table1_dir is not None and Path(table1_dir).is_dir():
        table1 = [r for r in collect(table1_dir) if r.finished and r.divergence in dict(FAMILIES)]
    rows = [
        FamilyRow(
            family,
            LABELS[family],
            sorted((r for r in records if r.divergence == family and r.finished), key=lambda r: r.alpha),
            best_on_train(table1, family),
        )
        for family, _ in FAMILIES
    ]
    texts = {
        "learned_alpha.md": markdown(rows, records, _table1_note(table1_dir, table1, records)),
        "learned_alpha.csv": csv_text(rows),
    }
    paths = write_texts(out_dir, texts)
    paths["learned_alpha.png"] = figure(rows, Path(out_dir) / "learned_alpha.png")
    return paths
