"""The likelihood report (``+experiment=likelihood``): which training loss reproduces the paper's
baseline rows, judged by the ratios between them (docs/reproduction.md).

Every run is scored by Table 1's metric, the per-image SSE at z = μ, whatever it was trained with.
A run's hypothesis is its training likelihood and its λ relative to Table 1's (β-VAE: 4, the KLs:
1): the SSE (Gaussian, λ as in Table 1), the 255·SSE of *disentangling-vae* (Gaussian, λ/255: under
Adam the same training), or the Bernoulli likelihood (BCE, λ as in Table 1).
"""

from __future__ import annotations

import math
from pathlib import Path

from vae_gjs.errors import RunError
from vae_gjs.reports.collect import RunRecord, collect, refuse_mixed
from vae_gjs.reports.markdown import table as md_table
from vae_gjs.reports.seeds import Summary, one_per_seed, several_seeds
from vae_gjs.reports.table1 import TRAINING_LOSSES, PaperTable
from vae_gjs.reports.text import csv_table, fmt, write_texts

#: The baseline rows and their λ in Table 1.
TABLE1_LAM = {"kl_qp": 1.0, "kl_pq": 1.0, "beta_vae": 4.0}
LABELS = {"kl_qp": "KL(q‖p)", "kl_pq": "KL(p‖q)", "beta_vae": "β-VAE"}
#: The two ratios the report judges by: (numerator, denominator).
RATIOS = (("beta_vae", "kl_qp"), ("kl_pq", "kl_qp"))


def hypothesis(record: RunRecord) -> str:
    """The training loss of ``record``: ``SSE``, ``255·SSE``, ``Bernoulli`` or what else it is."""
    scale = record.lam / TABLE1_LAM[record.divergence]
    if record.likelihood in TRAINING_LOSSES and math.isclose(scale, 1):
        return TRAINING_LOSSES[record.likelihood]
    if record.likelihood == "gaussian" and math.isclose(scale, 1 / 255):
        return "255·SSE"
    return f"{record.likelihood}, λ × {scale:.4g}"


def by_hypothesis(records: list[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """The finished baseline runs by hypothesis and divergence, one per seed (two runs of one
    seed in one cell are an error)."""
    cells: dict[str, dict[str, list[RunRecord]]] = {}
    for record in records:
        if record.finished and record.divergence in TABLE1_LAM:
            cells.setdefault(hypothesis(record), {}).setdefault(record.divergence, []).append(record)
    return {
        name: {
            divergence: one_per_seed(runs, f"{divergence} (trained with {name})", "keep one")
            for divergence, runs in cell.items()
        }
        for name, cell in cells.items()
    }


def test_sse(cell: dict[str, list[RunRecord]], divergence: str) -> Summary:
    """The test SSE of ``divergence`` in ``cell`` over its seeds (empty when it has no run)."""
    return Summary.of(r.test_sse for r in cell.get(divergence, []))


def ratio(cell: dict[str, list[RunRecord]], numerator: str, denominator: str) -> float:
    """The ratio of the two rows' test SSE, each averaged over its seeds."""
    return test_sse(cell, numerator).mean / test_sse(cell, denominator).mean


def runs_csv(cells: dict[str, dict[str, list[RunRecord]]], seeds: bool) -> str:
    """likelihood.csv: one line per run of every hypothesis (its seed where there are several)."""
    return csv_table(
        (
            "hypothesis",
            "likelihood",
            "lam",
            "divergence",
            *(("seed",) if seeds else ()),
            "test_sse",
            "train_sse",
            "epochs",
            "run",
        ),
        (
            (
                name,
                r.likelihood,
                r.lam,
                r.divergence,
                *((r.seed,) if seeds else ()),
                fmt(r.test_sse, 4),
                fmt(r.train_sse, 4),
                r.epochs,
                r.path.name,
            )
            for name, cell in sorted(cells.items())
            for runs in cell.values()
            for r in runs
        ),
    )


def likelihood_report(
    records: list[RunRecord], out_dir: str | Path, table1_dir: str | Path | None = None
) -> dict[str, Path]:
    """``likelihood.md`` and ``likelihood.csv`` in ``out_dir``: per hypothesis, the baseline rows'
    test SSE and their ratios, next to the paper's (``table1_dir``: a Table 1 sweep whose baseline
    runs join, e.g. the SSE-trained ones)."""
    records = records + (collect(table1_dir) if table1_dir is not None else [])
    cells = by_hypothesis(records)
    if not cells:
        raise RunError("no finished KL(q‖p), KL(p‖q) or β-VAE run to compare")
    refuse_mixed(records, "likelihood", ("dataset", "batch_size", "training"))
    dataset = records[0].dataset
    paper = PaperTable.load()
    paper_sse = {name: paper.values[(name, dataset)] for name in TABLE1_LAM}
    paper_ratios = [paper_sse[a] / paper_sse[b] for a, b in RATIOS]
    budgets = sorted(
        {f"{r.budget} ({r.epochs} epochs)" for cell in cells.values() for runs in cell.values() for r in runs}
    )
    ratio_names = [f"{LABELS[a]} / {LABELS[b]}" for a, b in RATIOS]

    def distance(cell: dict[str, list[RunRecord]]) -> float:
        """Σ |log(ours / paper)| over the ratios: 0 reproduces both."""
        ours = [ratio(cell, a, b) for a, b in RATIOS]
        return sum(abs(math.log(o / p)) for o, p in zip(ours, paper_ratios, strict=True))

    seeds = several_seeds([r for cell in cells.values() for runs in cell.values() for r in runs])

    def shown(cell: dict[str, list[RunRecord]], divergence: str) -> str:
        return test_sse(cell, divergence).text() if seeds else fmt(test_sse(cell, divergence).mean)

    rows = [
        (
            name,
            *[shown(cell, d) for d in TABLE1_LAM],
            *[fmt(ratio(cell, a, b)) for a, b in RATIOS],
            fmt(distance(cell), 3),
        )
        for name, cell in sorted(cells.items())
    ]
    paper_row = ("paper", *[fmt(v) for v in paper_sse.values()], *[fmt(v) for v in paper_ratios], "0")
    header = ("Training loss", *[LABELS[d] for d in TABLE1_LAM], *ratio_names, "Σ |log(ours / paper)|")
    markdown = "\n".join(
        [
            f"# Which training loss reproduces the baseline rows — {dataset}",
            "",
            f"Test SSE per image at z = μ (Table 1's metric) of models trained with each loss; budget "
            f"{', '.join(budgets)}. The last column sums |log| of the two ratios against the paper's: "
            "0 reproduces both."
            + (" Each cell: mean ± sample sd (n seeds); ratios of the means." if seeds else ""),
            f"Paper: {paper.source}",
            "",
            *md_table(header, [*rows, paper_row], align="lrrrrrr"),
        ]
    )
    csv_text = runs_csv(cells, seeds)
    return write_texts(out_dir, {"likelihood.md": markdown + "\n", "likelihood.csv": csv_text})
