"""Training curves of a sweep's runs from their metrics.csv: the two terms of the training loss per
epoch, for finished runs and running ones alike (how far a long sweep got, and whether its runs
have levelled off). Nothing is evaluated; any logger writes metrics.csv."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from vae_gjs.errors import RunError
from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord, epoch_columns
from vae_gjs.reports.figures import scope
from vae_gjs.reports.seeds import seed_order, several_seeds
from vae_gjs.reports.table1 import TRAINING_LOSSES, by_training_loss
from vae_gjs.rundir import COMPLETED

#: A divergence's name in the legend (mathtext); ``{alpha}`` and ``{lam}`` are the run's.
NAMES = {
    "kl_qp": "KL(q‖p)",
    "kl_pq": "KL(p‖q)",
    "beta_vae": "β-VAE (β = {lam:g})",
    "mmd": "MMD",
    "mmd_reference": "MMD",
    "gjs": "JS$^{{G_{{{alpha:g}}}}}$",
    "dgjs": "JS$_*^{{G_{{{alpha:g}}}}}$",
}
#: The panels of a training loss: metrics.csv column, dashed validation column, y label.
PANELS = (
    ("train/rec", "val/rec", "reconstruction term per image"),
    ("train/div", "val/div", "divergence term (before λ)"),
)


def run_label(record: RunRecord, seeds: bool, epochs: int) -> str:
    """E.g. ``JS$^{G_{0.2}}$, seed 1 (running: 37 of 100 epochs)``: the divergence with its α, the
    seed where the sweep has several, and how far a run that is not completed got."""
    label = NAMES.get(record.divergence, record.divergence).format(alpha=record.alpha, lam=record.lam)
    label += " (α learned)" if record.learn_alpha else ""
    label += f", seed {record.seed}" if seeds else ""
    if record.status != COMPLETED:
        label += f" ({record.status}: {epochs} of {record.max_epochs} epochs)"
    return label


#: Line styles of a cell's seeds, the seed of most runs first (a validation split's values are dashed).
SEED_STYLES = ("-", ":", "-.")


def _cell(record: RunRecord) -> tuple[str, float | None, bool]:
    """What a colour stands for: the divergence, its α (None without one) and whether α was learned."""
    return record.divergence, None if math.isnan(record.alpha) else record.alpha, record.learn_alpha


def training_curves(records: list[RunRecord], path: str | Path) -> Path:
    """``path`` (PNG): one row of panels per training loss (the reconstruction term is SSE or BCE
    per image), the reconstruction and divergence terms of the training loss against epochs
    trained, one line per run: a colour per cell (divergence and α) throughout, a line style per
    seed (solid for the seed of most runs), a validation split's values dashed; or a one-line
    :class:`RunError` when no run has logged an epoch."""
    from matplotlib.ticker import FormatStrFormatter

    columns = [column for panel in PANELS for column in panel[:2]]
    curves = {r.path: epoch_columns(r, columns) for r in records}
    shown = [r for r in records if curves[r.path]["train/rec"][0]]
    if not shown:
        raise RunError("report=curves: no run in the sweep has logged an epoch (metrics.csv)")
    seeds = several_seeds(shown)
    runs_of = Counter(r.seed for r in shown)
    ranked = sorted(runs_of, key=lambda seed: (-runs_of[seed], seed_order(seed)))
    seed_rank = {seed: i for i, seed in enumerate(ranked)}
    cells = list(dict.fromkeys(map(_cell, shown)))
    plt = pyplot()
    colours = plt.get_cmap("tab20" if len(cells) > 10 else "tab10")
    groups = by_training_loss(sorted(shown, key=lambda r: seed_order(r.seed)))
    fig, axes = plt.subplots(len(groups), 2, figsize=(13, 4.2 * len(groups)), squeeze=False)
    for row, (loss, runs) in zip(axes, groups.items(), strict=True):
        for record in sorted(runs, key=lambda r: cells.index(_cell(r))):
            curve = curves[record.path]
            colour = colours(cells.index(_cell(record)) % colours.N)
            style = SEED_STYLES[seed_rank[record.seed] % len(SEED_STYLES)]
            label = run_label(record, seeds, len(curve["train/rec"][0]))
            for ax, (column, val_column, _) in zip(row, PANELS, strict=True):
                ax.plot(*curve[column], color=colour, ls=style, lw=1.2, label=label)
                if curve[val_column][0]:
                    ax.plot(*curve[val_column], color=colour, lw=1.0, ls="--")
        for ax, (column, _, what) in zip(row, PANELS, strict=True):
            ax.set_title(f"{TRAINING_LOSSES.get(loss, loss)} loss (likelihood={loss}): {what}", fontsize=10)
            ax.set_xlabel("epochs trained")
            ax.set_ylabel(column)
            ax.grid(alpha=0.3, which="both")
        row[0].set_yscale("log")
        for axis in (row[0].yaxis.set_major_formatter, row[0].yaxis.set_minor_formatter):
            axis(FormatStrFormatter("%g"))
        row[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    validation = any(curves[r.path]["val/rec"][0] for r in shown)
    fig.suptitle(
        f"Training curves — {scope(records)}" + (" (dashed: the validation split)" if validation else ""),
        fontsize=11,
    )
    fig.tight_layout()
    return save_figure(fig, path)
