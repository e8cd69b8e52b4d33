"""Figures 3 and 5 of the paper from a sweep's run records (PNG, matplotlib Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord
from vae_gjs.reports.seeds import Summary, seed_order, several_seeds, t_interval
from vae_gjs.reports.table1 import best_alpha

DATASET_NAMES = {"mnist": "MNIST", "fmnist": "Fashion-MNIST", "dsprites": "dSprites", "chairs": "3D Chairs"}
FAMILIES = (("gjs", "JS$^{G_\\alpha}$"), ("dgjs", "JS$_*^{G_\\alpha}$"))
#: Colour of each family in Figures 3 and 5, and its horizontal offset in Figure 5 (so that
#: error bars do not overlap).
FAMILY_STYLE = {"gjs": ("tab:blue", -0.006), "dgjs": ("tab:orange", 0.006)}
REFERENCES = (
    ("kl_qp", "KL(q‖p)", "tab:red"),
    ("kl_pq", "KL(p‖q)", "tab:green"),
    ("mmd_reference", "MMD", "tab:purple"),
)


def scope(records: list[RunRecord]) -> str:
    """What a figure shows, for its title: dataset(s) and budget(s) with their epochs, e.g.
    ``MNIST, budget cpu (18 epochs)``."""
    runs = [r for r in records if r.finished] or records
    datasets = ", ".join(sorted({DATASET_NAMES.get(r.dataset, r.dataset) for r in runs})) or "no runs"
    budgets = sorted({(r.budget, r.epochs) for r in runs}, key=str)
    described = ", ".join(f"{b} ({e} epochs)" if e is not None else b for b, e in budgets)
    return f"{datasets}, budget {described or '?'}"


def _cells(records: list[RunRecord], divergence: str) -> dict[float, list[RunRecord]]:
    """The finished runs of ``divergence`` by α (its seeds in each), in order of α."""
    cells: dict[float, list[RunRecord]] = {}
    for run in sorted(
        (r for r in records if r.divergence == divergence and r.finished), key=lambda r: r.alpha
    ):
        cells.setdefault(run.alpha, []).append(run)
    return cells


def _series(
    records: list[RunRecord], divergence: str, attribute: str
) -> tuple[list[float], list[float], list[float]]:
    """α, the mean of ``attribute`` over each α's seeds, and its sample sd (NaN for one seed)."""
    points = [
        (a, Summary.of(getattr(r, attribute) for r in runs))
        for a, runs in _cells(records, divergence).items()
    ]
    points = [(a, s) for a, s in points if s.n]
    return [a for a, _ in points], [s.mean for _, s in points], [s.sd for _, s in points]


def _reference(records: list[RunRecord], divergence: str) -> list[RunRecord]:
    """The finished runs of a reference divergence (one per seed)."""
    return [r for r in records if r.divergence == divergence and r.finished]


def _band(ax: Any, alphas: list[float], means: list[float], sds: list[float], style: str, color: str) -> None:
    """Mean ± sd as a shaded band where a point has several seeds (nothing with one seed)."""
    if any(not math.isnan(sd) for sd in sds):
        spread = [0.0 if math.isnan(sd) else sd for sd in sds]
        low = [m - sd for m, sd in zip(means, spread, strict=True)]
        high = [m + sd for m, sd in zip(means, spread, strict=True)]
        ax.fill_between(alphas, low, high, color=color, alpha=0.25 if style == "-" else 0.12, lw=0)


def _seeds_line(records: list[RunRecord], what: str) -> str:
    """The title's line on seeds, e.g. ``3 seeds (1, 2, 1234): mean, bands ± 1 sd``; empty for one."""
    runs = [r for r in records if r.finished]
    if not several_seeds(runs):
        return ""
    seeds = sorted({r.seed for r in runs}, key=seed_order)
    return f"\n{len(seeds)} seeds ({', '.join(map(str, seeds))}): {what}"


def figure3(records: list[RunRecord], path: str | Path, title: str = "") -> Path:
    """Reconstruction (top) and divergence (bottom) against α for JS^{Gα} (left) and JS*^{Gα}
    (right); train dashed, test solid; KL(q‖p) and KL(p‖q) as horizontal lines. With several
    seeds each point and line is the mean over its seeds, with a shaded band of ± 1 sample sd
    (for KL(q‖p) and KL(p‖q): dotted lines at ± 1 sd, so that the bands stay readable)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    rows = (("sse", "reconstruction error (SSE)"), ("div", "divergence"))
    for col, (family, family_label) in enumerate(FAMILIES):
        for row, (metric, ylabel) in enumerate(rows):
            ax = axes[row][col]
            family_colour = FAMILY_STYLE[family][0]
            for split, style in (("train", "--"), ("test", "-")):
                alphas, values, sds = _series(records, family, f"{split}_{metric}")
                label = f"{family_label} ({split})"
                ax.plot(alphas, values, style, marker="o", color=family_colour, label=label)
                _band(ax, alphas, values, sds, style, family_colour)
                for reference, label, color in REFERENCES[:2]:
                    runs = _reference(records, reference)
                    if runs:
                        line = Summary.of(getattr(r, f"{split}_{metric}") for r in runs)
                        ax.axhline(line.mean, ls=style, color=color, label=f"{label} ({split})")
                        for bound in (line.mean - line.sd, line.mean + line.sd) if line.n > 1 else ():
                            ax.axhline(bound, ls=":", lw=0.8, color=color, alpha=0.7)  # ± sd, no fill
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(family_label)
            if row == 1:
                ax.set_xlabel("α")
    handles = {}
    for ax in axes.flat:  # one entry per line, in one legend to the right of the panels
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    families = [label for _, label in FAMILIES]
    handles = dict(sorted(handles.items(), key=lambda item: not item[0].startswith(tuple(families))))
    fig.suptitle(
        title
        or f"Figure 3 — {scope(records)}: reconstruction and divergence against α\n(train dashed, test solid)"
        + _seeds_line(records, "mean over seeds, bands ± 1 sample sd")
    )
    fig.tight_layout()
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return save_figure(fig, path)


def pooled_evidence(runs: list[RunRecord], likelihood: str | None) -> tuple[float, tuple[float, float]]:
    """log p(x) of one cell and its 95% interval: with one seed the run's own mean and bootstrap
    CI; with several, the mean over seeds of the runs' means and the t interval over seeds
    (:func:`~.seeds.t_interval`, n − 1 degrees of freedom: the seed-to-seed spread, which
    already carries each run's Monte Carlo error); NaN when no run has it."""
    evidence = [run.evidence(likelihood) for run in runs]
    evidence = [(mean, ci) for mean, ci in evidence if not math.isnan(mean)]
    if len(evidence) == 1:
        return evidence[0]
    pooled = t_interval([mean for mean, _ in evidence])
    return pooled.mean, (pooled.low, pooled.high)


def figure5(
    records: list[RunRecord], path: str | Path, title: str = "", likelihood: str | None = None
) -> Path:
    """Importance-sampled test log-evidence with 95% bootstrap CIs against α for JS^{Gα} and
    JS*^{Gα}; KL(q‖p), KL(p‖q) and MMD as horizontal lines with their CI bands (dotted bounds for
    an interval over seeds). Several seeds of a point are pooled by :func:`pooled_evidence`. ``likelihood``:
    the decoder likelihood of log p(x) (None: each run's headline evidence, normally its own
    training likelihood); the title names it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    shown = sorted({likelihood} if likelihood else {r.evidence_likelihood for r in records if r.finished})
    for family, label in FAMILIES:
        color, offset = FAMILY_STYLE[family]
        points = [(a, *pooled_evidence(runs, likelihood)) for a, runs in _cells(records, family).items()]
        points = [(a, m, ci) for a, m, ci in points if not math.isnan(m)]
        ax.errorbar(
            [a + offset for a, _, _ in points],
            [m for _, m, _ in points],
            yerr=[[m - ci[0] for _, m, ci in points], [ci[1] - m for _, m, ci in points]],
            marker="o",
            capsize=3,
            color=color,
            label=label,
        )
    for reference, label, color in REFERENCES:
        runs = _reference(records, reference)
        if not runs:
            continue
        mean, ci = pooled_evidence(runs, likelihood)
        if not math.isnan(mean):
            ax.axhline(mean, color=color, ls="--", label=label)
            if len(runs) == 1:
                ax.axhspan(*ci, color=color, alpha=0.12)
            else:  # the wider interval over seeds as dotted bounds, so that the points stay readable
                for bound in ci:
                    ax.axhline(bound, ls=":", lw=0.8, color=color, alpha=0.7)
    ax.set_xlabel("α")
    ax.set_ylabel("test log p(x) (nats per image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_title(
        title
        or f"Figure 5 — {scope(records)}: log model evidence with 95% bootstrap CIs\n"
        f"({'/'.join(shown)} decoder likelihood)"
        + _seeds_line(records, "mean over seeds, 95% t interval of it (one seed: its bootstrap CI)")
    )
    fig.tight_layout()
    return save_figure(fig, path)


#: The models of Figure 4 (divergence, label); the families are shown at their best α.
FIGURE4_BASELINES = (("kl_qp", "KL(q‖p)"), ("kl_pq", "KL(p‖q)"), ("mmd_reference", "MMD"), ("mmd", "MMD"))
FIGURE4_FAMILIES = (("gjs", "JS^Gα"), ("dgjs", "JS*^Gα"))


def figure4_runs(records: list[RunRecord]) -> list[tuple[str, RunRecord]]:
    """The finished runs Figure 4 shows, with their labels: each baseline present (one MMD), and
    JS^{Gα} and JS*^{Gα} at the α of lowest *training* SSE averaged over seeds (Table 1's choice,
    :func:`~.table1.best_alpha`); with several seeds, each model's run of the lowest seed."""
    finished = sorted((r for r in records if r.finished), key=lambda r: seed_order(r.seed))
    seeds = several_seeds(finished)

    def named(label: str, run: RunRecord) -> str:
        return label + (f", seed {run.seed}" if seeds else "")

    chosen: dict[str, RunRecord] = {}
    for divergence, label in FIGURE4_BASELINES:
        run = next((r for r in finished if r.divergence == divergence), None)
        if run is not None and not any(key.startswith(label) for key in chosen):
            chosen[named(label, run)] = run
    for divergence, label in FIGURE4_FAMILIES:
        best = best_alpha(finished, divergence)
        if best is not None:
            alpha, runs = best
            chosen[named(f"{label}, α={alpha:g}", runs[0])] = runs[0]
    return list(chosen.items())


def figure4(panels: list[Any], path: str | Path, title: str = "", extent: float = 3.0) -> Path:
    """Figure 4: one column of panels per model; in each, one row per traversed latent dimension
    (labelled with the dimension and its mean test KL), columns the 10 values of z_d in
    [-extent, extent]; below, 10 test images and their reconstructions. ``panels`` are
    :class:`vae_gjs.evaluation.figure4.Panel` objects (pixels in [0, 1])."""
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(
        2, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False, gridspec_kw={"height_ratios": [5, 2]}
    )
    for col, panel in enumerate(panels):
        rows = len(panel.dims)
        size = panel.traversals.shape[-1]

        def mosaic(images: Any, n_rows: int) -> Any:
            pixels = images[:, 0].numpy()  # [N, H, W], first channel (greyscale datasets)
            return np.vstack([np.hstack(list(pixels[r * 10 : (r + 1) * 10])) for r in range(n_rows)])

        top = axes[0][col]
        top.imshow(mosaic(panel.traversals, rows), cmap="gray", vmin=0, vmax=1)
        top.set_yticks([size * (r + 0.5) for r in range(rows)])
        top.set_yticklabels(
            [f"z{d} (KL {kl:.2f})" for d, kl in zip(panel.dims, panel.kls, strict=True)], fontsize=7
        )
        top.set_xticks([size * (c + 0.5) for c in (0, 9)])
        top.set_xticklabels([f"{-extent:g}", f"{extent:g}"], fontsize=7)
        top.set_title(panel.label, fontsize=9)
        bottom = axes[1][col]
        pair = np.vstack([mosaic(panel.images, 1), mosaic(panel.reconstructions, 1)])
        bottom.imshow(pair, cmap="gray", vmin=0, vmax=1)
        bottom.set_yticks([size * 0.5, size * 1.5])
        bottom.set_yticklabels(["test", "recon."], fontsize=7)
        bottom.set_xticks([])
    fig.suptitle(
        title
        or "Figure 4: latent traversals of the 5 dimensions of highest KL (rows), z_d from "
        f"{-extent:g} to {extent:g} (columns)",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)
