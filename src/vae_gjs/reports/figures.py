"""Figures 3 and 5 of the paper from a sweep's run records (PNG, matplotlib Agg)."""

from __future__ import annotations

import math
from pathlib import Path

from vae_gjs.plotting import pyplot, save_figure
from vae_gjs.reports.collect import RunRecord

FAMILIES = (("gjs", "JS$^{G_\\alpha}$"), ("dgjs", "JS$_*^{G_\\alpha}$"))
#: Colour and horizontal offset (so error bars do not overlap) of each family in Figure 5.
FAMILY_STYLE = {"gjs": ("tab:blue", -0.006), "dgjs": ("tab:orange", 0.006)}
REFERENCES = (
    ("kl_qp", "KL(q‖p)", "tab:red"),
    ("kl_pq", "KL(p‖q)", "tab:green"),
    ("mmd_reference", "MMD", "tab:purple"),
)


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
    axes[0][1].legend(fontsize=8, loc="best")
    fig.suptitle(title or "Figure 3: reconstruction and divergence against α (train dashed, test solid)")
    fig.tight_layout()
    return save_figure(fig, path)


def figure5(records: list[RunRecord], path: str | Path, title: str = "") -> Path:
    """Importance-sampled test log-evidence with 95% bootstrap CIs against α for JS^{Gα} and
    JS*^{Gα}; KL(q‖p), KL(p‖q) and MMD as horizontal lines with their CI bands."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for family, label in FAMILIES:
        color, offset = FAMILY_STYLE[family]
        runs = sorted((r for r in records if r.divergence == family and r.finished), key=lambda r: r.alpha)
        runs = [r for r in runs if not math.isnan(r.log_px)]
        ax.errorbar(
            [r.alpha + offset for r in runs],
            [r.log_px for r in runs],
            yerr=[[r.log_px - r.log_px_ci[0] for r in runs], [r.log_px_ci[1] - r.log_px for r in runs]],
            marker="o",
            capsize=3,
            color=color,
            label=label,
        )
    for reference, label, color in REFERENCES:
        run = _reference(records, reference)
        if run is not None and not math.isnan(run.log_px):
            ax.axhline(run.log_px, color=color, ls="--", label=label)
            ax.axhspan(*run.log_px_ci, color=color, alpha=0.12)
    ax.set_xlabel("α")
    ax.set_ylabel("test log p(x) (nats per image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Figure 5: log model evidence with 95% bootstrap CIs")
    fig.tight_layout()
    return save_figure(fig, path)
