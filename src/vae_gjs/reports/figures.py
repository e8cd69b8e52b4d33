"""Figures 3 and 5 of the paper from a sweep's run records (PNG, matplotlib Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord

DATASET_NAMES = {"mnist": "MNIST", "fmnist": "Fashion-MNIST", "dsprites": "dSprites", "chairs": "3D Chairs"}
FAMILIES = (("gjs", "JS$^{G_\\alpha}$"), ("dgjs", "JS$_*^{G_\\alpha}$"))
#: Colour and horizontal offset (so error bars do not overlap) of each family in Figure 5.
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


def _series(records: list[RunRecord], divergence: str, attribute: str) -> tuple[list[float], list[float]]:
    points = sorted(
        (r.alpha, getattr(r, attribute)) for r in records if r.divergence == divergence and r.finished
    )
    points = [(a, v) for a, v in points if not math.isnan(v)]
    return [a for a, _ in points], [v for _, v in points]


def _reference(records: list[RunRecord], divergence: str) -> RunRecord | None:
    return next((r for r in records if r.divergence == divergence and r.finished), None)


def figure3(records: list[RunRecord], path: str | Path, title: str = "") -> Path:
    """Reconstruction (top) and divergence (bottom) against α for JS^{Gα} (left) and JS*^{Gα}
    (right); train dashed, test solid; KL(q‖p) and KL(p‖q) as horizontal lines."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    rows = (("sse", "reconstruction error (SSE)"), ("div", "divergence"))
    for col, (family, family_label) in enumerate(FAMILIES):
        for row, (metric, ylabel) in enumerate(rows):
            ax = axes[row][col]
            for split, style in (("train", "--"), ("test", "-")):
                alphas, values = _series(records, family, f"{split}_{metric}")
                ax.plot(
                    alphas, values, style, marker="o", color="tab:blue", label=f"{family_label} ({split})"
                )
                for reference, label, color in REFERENCES[:2]:
                    run = _reference(records, reference)
                    if run is not None:
                        ax.axhline(
                            getattr(run, f"{split}_{metric}"),
                            ls=style,
                            color=color,
                            label=f"{label} ({split})",
                        )
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
    fig.suptitle(
        title
        or f"Figure 3 — {scope(records)}: reconstruction and divergence against α\n(train dashed, test solid)"
    )
    fig.tight_layout()
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return save_figure(fig, path)


def figure5(
    records: list[RunRecord], path: str | Path, title: str = "", likelihood: str | None = None
) -> Path:
    """Importance-sampled test log-evidence with 95% bootstrap CIs against α for JS^{Gα} and
    JS*^{Gα}; KL(q‖p), KL(p‖q) and MMD as horizontal lines with their CI bands. ``likelihood``:
    the decoder likelihood of log p(x) (None: each run's headline evidence, normally its own
    training likelihood); the title names it."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    shown = sorted({likelihood} if likelihood else {r.evidence_likelihood for r in records if r.finished})
    for family, label in FAMILIES:
        color, offset = FAMILY_STYLE[family]
        runs = sorted((r for r in records if r.divergence == family and r.finished), key=lambda r: r.alpha)
        points = [(r.alpha, *r.evidence(likelihood)) for r in runs]
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
        run = _reference(records, reference)
        if run is None:
            continue
        mean, ci = run.evidence(likelihood)
        if not math.isnan(mean):
            ax.axhline(mean, color=color, ls="--", label=label)
            ax.axhspan(*ci, color=color, alpha=0.12)
    ax.set_xlabel("α")
    ax.set_ylabel("test log p(x) (nats per image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_title(
        title
        or f"Figure 5 — {scope(records)}: log model evidence with 95% bootstrap CIs\n"
        f"({'/'.join(shown)} decoder likelihood)"
    )
    fig.tight_layout()
    return save_figure(fig, path)


#: The models of Figure 4 (divergence, label); the families are shown at their best α.
FIGURE4_BASELINES = (("kl_qp", "KL(q‖p)"), ("kl_pq", "KL(p‖q)"), ("mmd_reference", "MMD"), ("mmd", "MMD"))
FIGURE4_FAMILIES = (("gjs", "JS^Gα"), ("dgjs", "JS*^Gα"))


def figure4_runs(records: list[RunRecord]) -> list[tuple[str, RunRecord]]:
    """The finished runs Figure 4 shows, with their labels: each baseline present (one MMD), and
    the JS^{Gα} and JS*^{Gα} runs of lowest *training* SSE (the paper's choice of α)."""
    finished = [r for r in records if r.finished]
    chosen: dict[str, RunRecord] = {}
    for divergence, label in FIGURE4_BASELINES:
        run = next((r for r in finished if r.divergence == divergence), None)
        if run is not None and label not in chosen:
            chosen[label] = run
    for divergence, label in FIGURE4_FAMILIES:
        runs = [r for r in finished if r.divergence == divergence and not math.isnan(r.train_sse)]
        if runs:
            best = min(runs, key=lambda r: r.train_sse)
            chosen[f"{label}, α={best.alpha:g}"] = best
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
