"""The learned-α report (``+experiment=learned_alpha``): α against epoch for every start, and the
learned α with its test error next to the best fixed α of the Table 1 sweep (docs/learned_alpha.md).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from vae_gjs.errors import RunError
from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord, collect, epoch_series
from vae_gjs.reports.figures import FAMILIES
from vae_gjs.reports.markdown import table as md_table
from vae_gjs.reports.seeds import Summary, missing_cells, seed_order, several_seeds
from vae_gjs.reports.table1 import best_alpha
from vae_gjs.reports.text import csv_table, fmt, missing_line, write_texts

#: The starting values of α in conf/experiment/learned_alpha.yaml.
STARTS = (0.1, 0.5, 0.9)
#: The families' names in the Markdown table (the figure uses the mathtext ones of FAMILIES).
LABELS = {"gjs": "JS^{Gα}", "dgjs": "JS*^{Gα}"}


def alpha_trajectory(record: RunRecord) -> tuple[list[int], list[float]]:
    """α against epochs trained: the start at 0, then ``train/alpha`` of metrics.csv after each
    epoch (:func:`~.collect.epoch_series`)."""
    epochs, alphas = epoch_series(record, "train/alpha")
    return [0, *epochs], [record.alpha, *alphas]


@dataclass(frozen=True)
class FamilyRow:
    """One divergence family of the report: its learned-α runs (every start and seed) and the
    Table 1 comparison: the best fixed α (:func:`~.table1.best_alpha`) and its runs."""

    family: str
    label: str
    runs: list[RunRecord]
    fixed: tuple[float, list[RunRecord]] | None

    @property
    def fixed_alpha(self) -> str:
        return f"{self.fixed[0]:g}" if self.fixed else "—"

    @property
    def fixed_test(self) -> float:
        """The best fixed α's test SSE, averaged over its seeds."""
        return Summary.of(r.test_sse for r in self.fixed[1]).mean if self.fixed else math.nan

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
    """The starts (at every seed of the sweep) without a finished run, with why."""
    return missing_cells(
        records, [(f"{family} from α={start}", family, start) for family, _ in FAMILIES for start in STARTS]
    )


def _start(run: RunRecord, seeds: bool) -> str:
    """A run's start in the table, with its seed when the sweep has several."""
    return f"{run.alpha:g}" + (f" (seed {run.seed})" if seeds else "")


def learned_runs(records: list[RunRecord], sweep_dir: str | Path) -> list[RunRecord]:
    """The runs of ``records`` that learned α, or a one-line :class:`RunError` when none did: the
    report would show fixed-α runs as learned starts."""
    learned = [r for r in records if r.learn_alpha]
    if not learned:
        raise RunError(
            f"report=learned_alpha: {sweep_dir} has no run that learned α (learn_alpha=true, as "
            f"python train.py -m +experiment=learned_alpha trains), only {len(records)} fixed-α runs; "
            "for those use report=table1 or report=fig3"
        )
    return learned


def markdown(rows: list[FamilyRow], records: list[RunRecord], note: str) -> str:
    datasets = ", ".join(sorted({r.dataset for r in records})) or "—"
    budgets = ", ".join(sorted({f"{r.budget} ({r.epochs} epochs)" for r in records if r.finished})) or "—"
    seeds = several_seeds(records)
    expected = len(FAMILIES) * len(STARTS) * (len({r.seed for r in records}) if seeds else 1)
    over = "the starts and seeds" if seeds else "the starts"
    lines = [
        f"# Learned α — {datasets}: learned skew and test reconstruction error (per-image SSE, z = μ)",
        "",
        f"Budget {budgets}; {sum(r.finished for r in records)} of {expected} runs "
        f"finished and evaluated. Learned α: mean ± sample sd over {over}."
        + (" Best fixed α: its test SSE averaged over its seeds." if seeds else ""),
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
                        f"{_start(r, seeds)} → {fmt(r.alpha_learned, 3)} ({fmt(r.test_sse)})"
                        for r in row.runs
                    )
                    or "—",
                    row.fixed_alpha,
                    fmt(row.fixed_test),
                )
                for row in rows
            ],
            align="lrlrr",
        ),
    ]
    missing = _missing(records)
    lines += ["", missing_line(missing)]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[FamilyRow], seeds: bool = False) -> str:
    """One line per learned-α run (``seeds``: with a ``seed`` column after the start)."""
    header = (
        "divergence",
        "start_alpha",
        *(("seed",) if seeds else ()),
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
                *((run.seed,) if seeds else ()),
                fmt(run.alpha_learned, 6),
                fmt(run.test_sse, 4),
                fmt(run.train_sse, 4),
                run.epochs,
                fmt(row.alpha_mean, 6),
                fmt(row.alpha_sd, 6),
                row.fixed_alpha if row.fixed else "",
                fmt(row.fixed_test, 4) if row.fixed else "",
                run.path.name,
            )
            for row in rows
            for run in row.runs
        ),
    )


def figure(rows: list[FamilyRow], path: str | Path, seeds: bool = False) -> Path:
    """α against epochs trained, one panel per family and one line per start (and seed); the best
    fixed α of the Table 1 sweep as a dashed line where there is one."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 4), sharey=True, squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        for run in row.runs:
            epochs, alphas = alpha_trajectory(run)
            ax.plot(epochs, alphas, marker="o", markersize=3, label=f"start α = {_start(run, seeds)}")
        if row.fixed is not None:
            ax.axhline(row.fixed[0], ls="--", color="grey", label=f"best fixed α = {row.fixed_alpha}")
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
    ``out_dir`` from the runs of a learned-α sweep (its runs with ``learn_alpha=true``; none is an
    error); ``table1_dir``: the fixed-α sweep of the same dataset and budget, whose best α (on the
    training error averaged over seeds, as in Table 1) is shown alongside."""
    records = learned_runs(records, Path(out_dir).parent)
    table1 = []
    if table1_dir is not None and Path(table1_dir).is_dir():
        table1 = [
            r
            for r in collect(table1_dir)
            if r.finished and r.divergence in dict(FAMILIES) and not r.learn_alpha
        ]
    rows = [
        FamilyRow(
            family,
            LABELS[family],
            sorted(
                (r for r in records if r.divergence == family and r.finished),
                key=lambda r: (r.alpha, seed_order(r.seed)),
            ),
            best_alpha(table1, family),
        )
        for family, _ in FAMILIES
    ]
    seeds = several_seeds(records)
    texts = {
        "learned_alpha.md": markdown(rows, records, _table1_note(table1_dir, table1, records)),
        "learned_alpha.csv": csv_text(rows, seeds),
    }
    paths = write_texts(out_dir, texts)
    paths["learned_alpha.png"] = figure(rows, Path(out_dir) / "learned_alpha.png", seeds)
    return paths
