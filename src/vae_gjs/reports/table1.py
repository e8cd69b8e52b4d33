"""Table 1: final test reconstruction error per regulariser, ours next to the paper's.

The best α of JS^{Gα} and JS*^{Gα} is chosen on the *training* reconstruction error (the paper
argues train and test track each other, so no validation set is needed) and reported with its
test error.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vae_gjs.config.runtime import setting_digest
from vae_gjs.errors import RunError
from vae_gjs.reports.collect import RunRecord, refuse_mixed, why_unfinished
from vae_gjs.reports.markdown import table as md_table
from vae_gjs.reports.seeds import (
    Interval,
    Summary,
    missing_cells,
    one_per_seed,
    paired_difference,
    seed_order,
    several_seeds,
)
from vae_gjs.reports.text import csv_table, fmt, missing_line, write_texts
from vae_gjs.rundir import PlannedRun

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
    """One row of Table 1: its finished runs (one per seed; at the chosen α for the JS rows),
    the paper's number, for the rows after the first the paired difference to KL(q‖p), and for
    JS*^{Gα} also the paired difference to JS^{Gα} (the paper's JS* < JS: :data:`DUAL_VERSUS_SKEW`)."""

    key: str
    label: str
    runs: tuple[RunRecord, ...]
    paper: float
    paper_alpha: float | None
    chosen_alpha: float | None
    versus_kl: Interval | None = None
    versus_js: Interval | None = None

    @property
    def test(self) -> Summary:
        """Test SSE over the row's seeds."""
        return Summary.of(r.test_sse for r in self.runs)

    @property
    def train(self) -> Summary:
        """Training SSE over the row's seeds."""
        return Summary.of(r.train_sse for r in self.runs)

    @property
    def ours(self) -> float:
        """The mean test SSE over the row's seeds (the run's own with one seed)."""
        return self.test.mean

    @property
    def ratio(self) -> float:
        return self.ours / self.paper


Pick = Callable[[list[RunRecord]], tuple[list[RunRecord], float | None]]
#: What a second run of one seed in one cell means, and what to do.
ONE_PER_SEED = "Table 1 takes one run per seed of a row (report=likelihood compares training losses)"


def _cell(records: list[RunRecord], name: str, alpha: float | None = None) -> list[RunRecord]:
    """The runs of divergence ``name`` (at ``alpha`` if given), one per seed."""
    runs = [r for r in records if r.divergence == name and (alpha is None or math.isclose(r.alpha, alpha))]
    return one_per_seed(runs, name if alpha is None else f"{name} α={alpha:g}", ONE_PER_SEED)


def _only(name: str) -> Pick:
    def pick(records: list[RunRecord]) -> tuple[list[RunRecord], float | None]:
        return _cell(records, name), None

    return pick


def _at_alpha(name: str, alpha: float) -> Pick:
    def pick(records: list[RunRecord]) -> tuple[list[RunRecord], float | None]:
        return _cell(records, name, alpha), None

    return pick


def best_alpha(records: list[RunRecord], name: str) -> tuple[float, list[RunRecord]] | None:
    """How Table 1 picks α: among the α of divergence ``name``, the one with the lowest *training*
    error, averaged over its seeds (the paper's rule, per α; with one seed, the run's own), with
    its runs; ``None`` without a run that has a training error."""
    cells = [
        (alpha, _cell(records, name, alpha))
        for alpha in sorted({r.alpha for r in records if r.divergence == name and not math.isnan(r.alpha)})
    ]
    scored = [(Summary.of(r.train_sse for r in runs).mean, alpha, runs) for alpha, runs in cells]
    scored = [cell for cell in scored if not math.isnan(cell[0])]
    if not scored:
        return None
    _, alpha, runs = min(scored, key=lambda cell: cell[0])
    return alpha, runs


def _best_on_train(name: str) -> Pick:
    def pick(records: list[RunRecord]) -> tuple[list[RunRecord], float | None]:
        best = best_alpha(records, name)
        return ([], None) if best is None else (best[1], best[0])

    return pick


ROWS: Sequence[tuple[str, str, Pick]] = (
    ("kl_qp", "KL(q(z|x) ‖ p(z))", _only("kl_qp")),
    ("kl_pq", "KL(p(z) ‖ q(z|x))", _only("kl_pq")),
    ("beta_vae", "β-VAE (β = 4)", _only("beta_vae")),
    ("mmd", "MMD (λ = 500)", _only("mmd_reference")),
    ("gjs_0.5", "JS^{G0.5}", _at_alpha("gjs", 0.5)),
    ("gjs_best", "JS^{Gα}", _best_on_train("gjs")),
    ("dgjs_best", "JS*^{Gα}", _best_on_train("dgjs")),
)


#: The second step of the paper's ranking JS*^{Gα} < JS^{Gα} < KL(q‖p) (the first is JS^{Gα}'s
#: difference to KL(q‖p)): the keys of the two rows, each at its own chosen α.
DUAL_VERSUS_SKEW = ("dgjs_best", "gjs_best")


def missing_runs(records: list[RunRecord], plan: list[PlannedRun] | None = None) -> list[str]:
    """Expected runs of the sweep that are absent, unfinished or not evaluated, with why; the α of
    one divergence missing for one reason in one entry (``gjs α=0.2, 0.3: no run folder``). The
    expected runs are the ``plan`` of the sweep folder (:func:`~vae_gjs.rundir.read_plan`: the jobs
    its sweeps launched), else Table 1's grid (:data:`EXPECTED_RUNS`) at every seed of the sweep."""
    if plan is not None:
        return planned_missing(records, plan)
    merged: dict[tuple[str, str], list[float | None]] = {}
    for name, alpha in EXPECTED_RUNS:
        label = name if alpha is None else f"{name} α={alpha}"
        for line in missing_cells(records, [(label, name, alpha)]):
            merged.setdefault((name, line.removeprefix(label)), []).append(alpha)
    return [
        name
        + (f" α={', '.join(f'{a:g}' for a in alphas if a is not None)}" if alphas[0] is not None else "")
        + why
        for (name, why), alphas in merged.items()
    ]


def trained_in_other_folders(records: list[RunRecord], plan: list[PlannedRun]) -> set[str]:
    """The planned folders that do not exist while a finished run of another folder trained their
    cell (divergence, α, seed, training loss) with their setting: the same job run under another
    command line, e.g. ``precision=fp32`` on a machine without the bf16 units a planned
    ``precision=bf16`` needed. A run trained otherwise (``divergence.prime=false``, another
    ``optim.lr``) does not stand in for a planned one (a plan written before jobs.json kept the
    setting compares the cell alone)."""
    folders = {record.path.name for record in records}
    done: dict[tuple, set[str]] = {}
    for r in records:
        if r.finished:
            cell = (r.divergence, None if math.isnan(r.alpha) else r.alpha, r.seed, r.likelihood)
            done.setdefault(cell, set()).add(setting_digest(r.setting))
    return {
        run.folder
        for run in plan
        if run.folder not in folders
        and (settings := done.get((run.divergence, run.alpha, run.seed, run.likelihood)))
        and (run.setting is None or run.setting in settings)
    }


def planned_missing(records: list[RunRecord], plan: list[PlannedRun]) -> list[str]:
    """The runs of ``plan`` without a finished run of their folder, with why (``no run folder``, or
    how far it got: :func:`~vae_gjs.reports.collect.why_unfinished`); the seeds are named where
    the sweep has several, and one entry holds a cell's seeds and then a divergence's α missing
    for one reason (``gjs α=0.2, 0.5 seeds 1, 2: no run folder``)."""
    by_folder = {record.path.name: record for record in records}
    named = len({run.seed for run in plan} | {record.seed for record in records}) > 1
    trained_elsewhere = trained_in_other_folders(records, plan)
    cells: dict[tuple[str, float | None, str], list[int]] = {}
    for run in plan:
        record = by_folder.get(run.folder)
        if (record is not None and record.finished) or run.folder in trained_elsewhere:
            continue
        why = "no run folder" if record is None else why_unfinished(record)
        cells.setdefault((run.divergence, run.alpha, why), []).append(run.seed)
    merged: dict[tuple[str, str, str], list[float | None]] = {}
    for (name, alpha, why), seeds in cells.items():
        label = f" seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds)))}" if named else ""
        merged.setdefault((name, label, why), []).append(alpha)
    return [
        name
        + (
            f" α={', '.join(f'{a:g}' for a in sorted(a for a in alphas if a is not None))}"
            if alphas[0] is not None
            else ""
        )
        + seed
        + f": {why}"
        for (name, seed, why), alphas in merged.items()
    ]


def build_rows(records: list[RunRecord], dataset: str, paper: PaperTable) -> list[Row]:
    """The rows of Table 1 from the finished runs; every row after KL(q‖p) with its test SSE's
    paired difference to KL(q‖p) over the seeds both have (:func:`~.seeds.paired_difference`),
    JS*^{Gα}'s also with its difference to JS^{Gα} (:data:`DUAL_VERSUS_SKEW`)."""
    usable = [r for r in records if r.finished]
    rows = []
    for key, label, pick in ROWS:
        runs, alpha = pick(usable)
        rows.append(
            Row(
                key, label, tuple(runs), paper.values[(key, dataset)], paper.alphas.get((key, dataset)), alpha
            )
        )
    reference = rows[0].runs
    dual, skew = (next(row for row in rows if row.key == key) for key in DUAL_VERSUS_SKEW)
    return [rows[0]] + [
        dataclasses.replace(
            row,
            versus_kl=paired_difference(row.runs, reference, "test_sse"),
            versus_js=paired_difference(row.runs, skew.runs, "test_sse") if row is dual else None,
        )
        for row in rows[1:]
    ]


def dual_versus_skew(rows: list[Row]) -> str:
    """JS*^{Gα}'s test error minus JS^{Gα}'s, paired by seed, as text (:meth:`Interval.text`)."""
    dual = next(row for row in rows if row.key == DUAL_VERSUS_SKEW[0])
    return dual.versus_js.text() if dual.versus_js else "—"


def _alpha(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def precisions(records: list[RunRecord]) -> str:
    """Where the finished runs differ in ``precision``, the sentence that says which ran in which
    (the most common by count, the others by name: ``fp32 for kl_qp seed 1, gjs α=0.1 seed 1``);
    empty where they share one, so such a table reads as before."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.finished:
            groups.setdefault(record.precision, []).append(record)
    if len(groups) < 2:
        return ""
    common = max(groups, key=lambda precision: len(groups[precision]))
    others = [
        f"{precision} for "
        + ", ".join(
            record.divergence
            + ("" if math.isnan(record.alpha) else f" α={record.alpha:g}")
            + ("" if record.seed is None else f" seed {record.seed}")
            for record in runs
        )
        for precision, runs in sorted(groups.items())
        if precision != common
    ]
    return f" Precision: {common} for {len(groups[common])} runs, {'; '.join(others)}."


def _seeds(records: list[RunRecord]) -> str:
    return ", ".join(str(seed) for seed in sorted({r.seed for r in records}, key=seed_order))


#: How the multi-seed table's numbers are made (printed above it).
SEEDS_NOTE = (
    "Each cell: mean ± sample sd (n seeds) of the test error; the best α has the lowest training "
    "error averaged over its seeds. Last column: the row's test error minus KL(q‖p)'s, paired by "
    "seed (runs of one seed share their initial weights and batch order), mean and 95% paired t interval "
    "over the seeds both rows have, mean ± t(0.975, n−1)·sd/√n; one pair gives no interval, two "
    "give a wide one (t = 12.71)."
)


def markdown(
    rows: list[Row],
    dataset: str,
    records: list[RunRecord],
    paper: PaperTable,
    title: str = "",
    plan: list[PlannedRun] | None = None,
) -> str:
    """Table 1 in Markdown under ``title`` (by default ``# Table 1 — <dataset>: ...``), with the
    runs of ``plan`` (else of Table 1's grid) it lacks."""
    budgets = sorted({f"{r.budget} ({r.epochs} epochs)" for r in records if r.finished})
    seeds = several_seeds(records)
    if plan is None:
        expected = len(EXPECTED_RUNS) * (len({r.seed for r in records}) if seeds else 1)
    else:
        planned = {run.folder for run in plan} - trained_in_other_folders(records, plan)
        expected = len(planned | {r.path.name for r in records})
    header = ["Divergence", "ours", "α (ours)", "paper", "α (paper)", "ours / paper"]
    if seeds:
        header[1] = "ours: mean ± sd (n)"
        header.append("ours − KL(q‖p) [95% CI] (pairs)")
    body = [
        [
            row.label,
            row.test.text() if seeds else fmt(row.ours),
            _alpha(row.chosen_alpha),
            fmt(row.paper),
            _alpha(row.paper_alpha),
            fmt(row.ratio, 3),
        ]
        + ([("reference" if row.versus_kl is None else row.versus_kl.text())] if seeds else [])
        for row in rows
    ]
    lines = [
        title or f"# Table 1 — {dataset}: test reconstruction error (per-image SSE, z = μ)",
        "",
        f"Ours: budget {', '.join(budgets) or '—'}, {sum(r.finished for r in records)} of "
        f"{expected} runs finished and evaluated"
        + (f" (seeds {_seeds(records)})" if seeds else "")
        + ". Best α chosen on the training error."
        + precisions(records),
        *([SEEDS_NOTE] if seeds else []),
        f"Paper: {paper.source}",
        "",
        *md_table(header, body, align="lrrrrr" + ("r" if seeds else "")),
    ]
    if seeds:
        lines += [
            "",
            "JS*^{Gα} − JS^{Gα} (each at its chosen α; the paper's JS* < JS), paired by seed as the "
            f"last column: {dual_versus_skew(rows)}.",
        ]
    missing = missing_runs(records, plan)
    lines += ["", missing_line(missing)]
    return "\n".join(lines) + "\n"


def csv_columns(rows: list[Row], dataset: str, seeds: bool = False) -> tuple[tuple[str, ...], list[tuple]]:
    """The CSV's header and one line per row; ``seeds``: the mean, sd and n over seeds, the paired
    difference to KL(q‖p) with its interval (and JS*^{Gα}'s to JS^{Gα}), and every run (the W&B
    table carries the same columns)."""
    if not seeds:
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
        return header, [
            (
                row.key,
                row.label,
                dataset,
                fmt(row.ours, 4),
                fmt(row.train.mean, 4),
                _alpha(row.chosen_alpha),
                row.paper,
                _alpha(row.paper_alpha),
                fmt(row.ratio, 4),
                row.runs[0].path.name if row.runs else "",
            )
            for row in rows
        ]
    header = (
        "row",
        "label",
        "dataset",
        "ours_test_sse",
        "ours_test_sd",
        "n",
        "ours_train_sse",
        "ours_alpha",
        "paper",
        "paper_alpha",
        "ratio",
        "diff_kl_qp",
        "diff_ci_low",
        "diff_ci_high",
        "n_pairs",
        "diff_gjs_best",
        "diff_gjs_ci_low",
        "diff_gjs_ci_high",
        "n_pairs_gjs_best",
        "seeds",
        "runs",
    )
    none = Interval(math.nan, math.nan, math.nan, 0)

    def interval(value: Interval | None) -> tuple[object, ...]:
        known = value or none
        return fmt(known.mean, 4), fmt(known.low, 4), fmt(known.high, 4), known.n if value else ""

    def line(row: Row) -> tuple[object, ...]:
        return (
            row.key,
            row.label,
            dataset,
            fmt(row.ours, 4),
            fmt(row.test.sd, 4),
            row.test.n,
            fmt(row.train.mean, 4),
            _alpha(row.chosen_alpha),
            row.paper,
            _alpha(row.paper_alpha),
            fmt(row.ratio, 4),
            *interval(row.versus_kl),
            *interval(row.versus_js),
            " ".join(str(r.seed) for r in row.runs),
            " ".join(r.path.name for r in row.runs),
        )

    return header, [line(row) for row in rows]


def latex(rows: list[Row], dataset: str, seeds: bool = False) -> str:
    """Table 1 as a LaTeX ``tabular`` (booktabs); ``dataset`` names the "ours" column."""

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

    def ours(row: Row) -> str:
        if not seeds:
            return value(row.ours, row.chosen_alpha)
        spread = rf" $\pm$ {fmt(row.test.sd)}" if row.test.n > 1 else ""
        alpha = rf" ($\alpha={_alpha(row.chosen_alpha)}$)" if row.chosen_alpha is not None else ""
        return f"{fmt(row.ours)}{spread} ({row.test.n}){alpha}"

    body = [
        f"{label(r.label)} & {ours(r)} & {value(r.paper, r.paper_alpha)} & "
        + fmt(r.ratio, 3)
        + (f" & {r.versus_kl.text() if r.versus_kl else 'reference'}" if seeds else "")
        + r" \\"
        for r in rows
    ]
    columns = rf"Divergence & ours ({dataset}) & paper & ours/paper"
    note = r"\multicolumn{5}{l}{$\mathrm{JS}_*^{G_\alpha} - \mathrm{JS}^{G_\alpha}$, paired by seed: "
    return "\n".join(
        [
            r"\begin{tabular}{lrrr" + ("r}" if seeds else "}"),
            r"\toprule",
            columns + (r" & $-$ KL$(q\|p)$ [95\% CI] (pairs)" if seeds else "") + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            *([note + dual_versus_skew(rows) + r"} \\"] if seeds else []),
            r"\end{tabular}",
            "",
        ]
    )


#: How the reports name a training likelihood (the loss a model was trained with).
TRAINING_LOSSES = {"gaussian": "SSE", "bernoulli": "Bernoulli"}


def _trained_with(plan: list[PlannedRun] | None, likelihood: str) -> list[PlannedRun] | None:
    """The runs of ``plan`` trained with ``likelihood`` (None without a plan)."""
    return None if plan is None else [run for run in plan if run.likelihood == likelihood]


def _not_started(plan: list[PlannedRun] | None, groups: dict[str, list[RunRecord]]) -> str:
    """Markdown lines for the planned runs of a training loss that no run of the folder has yet
    (so it has no table): ``\nPlanned with the Bernoulli loss (likelihood=bernoulli), no run yet:
    kl_pq: no run folder; ...``; empty when there are none."""
    losses = sorted({run.likelihood for run in plan or []} - set(groups))
    return "".join(
        f"\nPlanned with the {_loss_name(loss)}, no run yet: "
        + "; ".join(planned_missing([], _trained_with(plan, loss) or []))
        + "\n"
        for loss in losses
    )


def by_training_loss(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """``records`` by the likelihood they were trained with, the SSE's (``gaussian``) first."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(record.likelihood, []).append(record)
    return dict(sorted(groups.items(), key=lambda item: (item[0] != "gaussian", item[0])))


def _loss_name(likelihood: str) -> str:
    """E.g. ``Bernoulli loss (likelihood=bernoulli)``."""
    return f"{TRAINING_LOSSES.get(likelihood, likelihood)} loss (likelihood={likelihood})"


def loss_table(tables: dict[str, list[Row]], dataset: str) -> list[str]:
    """The Markdown lines of the loss table: each row of Table 1 under each training loss (test
    SSE, the chosen α, the ratio to the paper), next to the paper's number."""
    losses = list(tables)
    parts = ("ours", "ours / paper")
    header = [
        "Divergence",
        "paper",
        *[f"{TRAINING_LOSSES.get(loss, loss)}: {p}" for loss in losses for p in parts],
    ]
    body = []
    for rows in zip(*tables.values(), strict=True):  # one Table 1 row under each loss
        cells = [rows[0].label, fmt(rows[0].paper)]
        for row in rows:
            ours = row.test.text() if row.test.n > 1 else fmt(row.ours)
            alpha = f" (α {_alpha(row.chosen_alpha)})" if row.chosen_alpha is not None else ""
            cells += [ours + alpha, fmt(row.ratio, 3)]
        body.append(cells)
    return [
        f"# Table 1 — {dataset}, by training loss: test reconstruction error (per-image SSE, z = μ)",
        "",
        "Every model is scored by Table 1's metric whatever loss it was trained with; one Table 1 "
        "per training loss follows, with its runs, seeds and missing runs.",
        "",
        *md_table(header, body, align="lr" + "rr" * len(losses)),
    ]


def table1(
    records: list[RunRecord],
    out_dir: str | Path,
    dataset: str | None = None,
    plan: list[PlannedRun] | None = None,
) -> dict[str, Path]:
    """Write ``table1.md``, ``table1.csv`` and ``table1.tex`` into ``out_dir``; returns their paths.
    Runs trained with several likelihoods make one Table 1 per training loss (in one file each:
    the loss table of :func:`loss_table` first in the Markdown, a ``likelihood`` column first in
    the CSV, one ``tabular`` per loss in the LaTeX); runs of one likelihood, today's single table.
    ``plan``: the runs the sweep folder's sweeps launched (:func:`~vae_gjs.rundir.read_plan`),
    whose missing ones each table lists (those trained with its loss); without one, the missing
    runs of Table 1's grid."""
    if not records:
        raise RunError("Table 1 has no runs to show")
    if dataset is None:
        refuse_mixed(records, "table1", ("dataset",))
        dataset = records[0].dataset if records else "?"
    paper = PaperTable.load()
    seeds = several_seeds(records)
    groups = by_training_loss(records)
    if len(groups) == 1:
        rows = build_rows(records, dataset, paper)
        texts = {
            "table1.md": markdown(
                rows, dataset, records, paper, plan=_trained_with(plan, records[0].likelihood)
            )
            + _not_started(plan, groups),
            "table1.csv": csv_table(*csv_columns(rows, dataset, seeds)),
            "table1.tex": latex(rows, dataset, seeds),
        }
        return write_texts(out_dir, texts)
    tables = {loss: build_rows(runs, dataset, paper) for loss, runs in groups.items()}
    sections = [
        markdown(
            tables[loss],
            dataset,
            runs,
            paper,
            f"## Trained with the {_loss_name(loss)}",
            _trained_with(plan, loss),
        )
        for loss, runs in groups.items()
    ]
    header = ("likelihood", *csv_columns([], dataset, seeds)[0])
    lines = [(loss, *line) for loss in groups for line in csv_columns(tables[loss], dataset, seeds)[1]]
    texts = {
        "table1.md": "\n".join(loss_table(tables, dataset))
        + "\n\n"
        + "\n".join(sections)
        + _not_started(plan, groups),
        "table1.csv": csv_table(header, lines),
        "table1.tex": "\n".join(
            f"% trained with the {_loss_name(loss)}\n"
            + latex(tables[loss], f"{dataset}, {TRAINING_LOSSES.get(loss, loss)}", seeds)
            for loss in groups
        ),
    }
    return write_texts(out_dir, texts)
