"""Figure 1: univariate Gaussians p = N(-2, 1²) and q = N(2, 2²).

(a) the arithmetic mean distribution (p + q)/2 against the normalised weighted geometric means
    ``N_α ∝ p^(1-α) q^α`` (Eqs. 12–13; this is Nielsen's weighting G_α(p, q), so α = 0 is p and
    α = 1 is q; the paper's JS^{Gα} uses the reversed N_α' = N_{1-α} ∝ p^α q^(1-α), and the two
    coincide at α = 0.5);
(b) the pointwise JS integrand ``½ p log(p/m) + ½ q log(q/m)`` with ``m = (p + q)/2`` (Eq. 5);
(c) the pointwise JS^{G0.5} integrand ``½ p log(p/g) + ½ q log(q/g)`` with ``g = N_0.5 ∝ √(pq)``
    (Eq. 17 at α = 0.5, where JS^{Gα} and JS^{Gα'} coincide).

The plotted integrands are computed on one grid (:func:`compute`) and integrated on that same grid
with Simpson's rule; ``tests/toy/test_fig1.py`` checks the JS integral against an independent
``scipy.integrate.quad`` value and the JS^{G0.5} integral against the closed form
:func:`vae_gjs.divergences.gjs_normal`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vae_gjs.plotting import pyplot, save_figure

P_MEAN, P_STD = -2.0, 1.0
Q_MEAN, Q_STD = 2.0, 2.0
ALPHAS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
GJS_ALPHA = 0.5
# p has 10 standard deviations of room on the left, q 7 on the right: the integrands' mass
# outside the grid is below 1e-10, far under the tolerance of the tests.
GRID = (-12.0, 16.0, 2801)
PLOT_XLIM = (-8.0, 12.0)


def log_normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``log N(x; mean, std²)``."""
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def geometric_mean_params(weight: float) -> tuple[float, float]:
    """Mean and standard deviation of ``N_w ∝ p^(1-w) q^w`` (Eqs. 12–13), via
    :func:`vae_gjs.divergences.geometric_mean_normal`."""
    import torch

    from vae_gjs.divergences import geometric_mean_normal

    mu, logvar = geometric_mean_normal(
        torch.tensor([P_MEAN], dtype=torch.float64),
        torch.tensor([2 * math.log(P_STD)], dtype=torch.float64),
        torch.tensor([Q_MEAN], dtype=torch.float64),
        torch.tensor([2 * math.log(Q_STD)], dtype=torch.float64),
        weight,
    )
    return float(mu[0]), float(torch.exp(0.5 * logvar[0]))


def gjs_closed_form(alpha: float = GJS_ALPHA, prime: bool = True) -> float:
    """JS^{Gα}(p ‖ q) in closed form (:func:`vae_gjs.divergences.gjs_normal`, Eq. 17)."""
    import torch

    from vae_gjs.divergences import gjs_normal

    value = gjs_normal(
        torch.tensor([P_MEAN], dtype=torch.float64),
        torch.tensor([2 * math.log(P_STD)], dtype=torch.float64),
        torch.tensor([Q_MEAN], dtype=torch.float64),
        torch.tensor([2 * math.log(Q_STD)], dtype=torch.float64),
        alpha,
        prime=prime,
    )
    return float(value)


def integrate(y: np.ndarray, x: np.ndarray) -> float:
    """Simpson's rule on the plotting grid: the numerical integral of a plotted curve."""
    from scipy.integrate import simpson

    return float(simpson(y, x=x))


@dataclass(frozen=True)
class Fig1Data:
    """Everything Figure 1 plots, on one grid ``x``."""

    x: np.ndarray
    p: np.ndarray
    q: np.ndarray
    mixture: np.ndarray  # (p + q) / 2
    geometric: dict[float, np.ndarray]  # α -> density of N_α ∝ p^(1-α) q^α
    geometric_params: dict[float, tuple[float, float]]  # α -> (mean, std)
    js_terms: tuple[np.ndarray, np.ndarray]  # ½ p log(p/m), ½ q log(q/m)
    gjs_terms: tuple[np.ndarray, np.ndarray]  # ½ p log(p/g), ½ q log(q/g), g = N_0.5
    gjs_closed_form: float

    @property
    def js_integrand(self) -> np.ndarray:
        return self.js_terms[0] + self.js_terms[1]

    @property
    def gjs_integrand(self) -> np.ndarray:
        return self.gjs_terms[0] + self.gjs_terms[1]

    @property
    def js_numeric(self) -> float:
        """∫ of the plotted JS integrand (Simpson on the grid)."""
        return integrate(self.js_integrand, self.x)

    @property
    def gjs_numeric(self) -> float:
        """∫ of the plotted JS^{G0.5} integrand (Simpson on the grid)."""
        return integrate(self.gjs_integrand, self.x)


def compute(grid: tuple[float, float, int] = GRID, alphas: tuple[float, ...] = ALPHAS) -> Fig1Data:
    """Densities, geometric means and both integrands on ``np.linspace(*grid)`` (float64)."""
    x = np.linspace(*grid)
    log_p = log_normal_pdf(x, P_MEAN, P_STD)
    log_q = log_normal_pdf(x, Q_MEAN, Q_STD)
    p, q = np.exp(log_p), np.exp(log_q)

    geometric_params = {a: geometric_mean_params(a) for a in sorted(set(alphas) | {GJS_ALPHA})}
    geometric = {a: np.exp(log_normal_pdf(x, *ms)) for a, ms in geometric_params.items()}

    # JS (Eq. 5): m = (p + q)/2, in logs so that the far tails do not produce 0 * log 0.
    log_m = np.logaddexp(log_p, log_q) - math.log(2)
    js_terms = (0.5 * p * (log_p - log_m), 0.5 * q * (log_q - log_m))
    # JS^{G0.5} (Eq. 17 at α = 0.5): (1-α) p log(p/g) + α q log(q/g), g = N_0.5.
    log_g = log_normal_pdf(x, *geometric_params[GJS_ALPHA])
    a = GJS_ALPHA
    gjs_terms = ((1 - a) * p * (log_p - log_g), a * q * (log_q - log_g))
    return Fig1Data(
        x=x,
        p=p,
        q=q,
        mixture=np.exp(log_m),
        geometric={a: geometric[a] for a in alphas},
        geometric_params=geometric_params,
        js_terms=js_terms,
        gjs_terms=gjs_terms,
        gjs_closed_form=gjs_closed_form(GJS_ALPHA),
    )


def plot(data: Fig1Data) -> Any:
    """The three-panel figure (a) means, (b) JS integrand, (c) JS^{G0.5} integrand."""
    plt = pyplot()
    from matplotlib import cm, colors

    x = data.x
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    red, blue, green = "tab:red", "tab:blue", "darkgreen"
    p_label = rf"$p = \mathcal{{N}}({P_MEAN:g}, {P_STD:g}^2)$"
    q_label = rf"$q = \mathcal{{N}}({Q_MEAN:g}, {Q_STD:g}^2)$"

    # (a) arithmetic against geometric means.
    ax = axes[0]
    ax.plot(x, data.p, color=red, lw=2, label=p_label)
    ax.plot(x, data.q, color=blue, lw=2, label=q_label)
    ax.plot(x, data.mixture, color="k", ls="--", lw=2, label=r"arithmetic mean $(p+q)/2$")
    norm = colors.Normalize(0.0, 1.0)
    cmap = plt.get_cmap("Greens")
    shade = colors.LinearSegmentedColormap.from_list("g", cmap(np.linspace(0.3, 0.95, 256)))
    for a, dens in data.geometric.items():
        if a == GJS_ALPHA:
            continue
        ax.plot(x, dens, color=shade(norm(a)), lw=1.2)
    m05, s05 = data.geometric_params[GJS_ALPHA]
    ax.plot(
        x,
        np.exp(log_normal_pdf(x, m05, s05)),
        color=green,
        lw=2.8,
        label=rf"$\mathcal{{N}}_{{0.5}} \propto \sqrt{{pq}}$ = $\mathcal{{N}}({m05:.2f}, {s05:.2f}^2)$",
    )
    sm = cm.ScalarMappable(norm=norm, cmap=shade)
    cbar = fig.colorbar(sm, ax=ax, pad=0.01, fraction=0.05)
    cbar.set_label(r"$\alpha$ in $\mathcal{N}_\alpha \propto p^{1-\alpha} q^{\alpha}$")
    cbar.set_ticks(list(data.geometric))
    ax.set_title(
        "(a) arithmetic mean vs geometric means $\\mathcal{N}_\\alpha$,\n"
        rf"$\alpha \in \{{{min(data.geometric):g}, \dots, {max(data.geometric):g}\}}$"
        r" (green; bold: $\alpha = 0.5$)"
    )
    ax.set_xlabel("$x$")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=8)

    # (b), (c): integrands, with the two weighted terms and the densities for reference.
    panels = [
        (
            axes[1],
            data.js_terms,
            ("m", r"$m = (p+q)/2$"),
            f"(b) JS integrand: $\\int$ = {data.js_numeric:.5f} nats (Simpson)",
        ),
        (
            axes[2],
            data.gjs_terms,
            ("g", r"$g = \mathcal{N}_{0.5} \propto \sqrt{pq}$"),
            f"(c) JS$^{{G_{{0.5}}}}$ integrand: $\\int$ = {data.gjs_numeric:.5f} nats (Simpson)\n"
            f"closed form (Eq. 17) = {data.gjs_closed_form:.5f} nats",
        ),
    ]
    ymax = max(float(np.max(t[0] + t[1])) for _, t, _, _ in panels)
    ymin = min(float(np.min(np.minimum(t[0] + t[1], np.minimum(*t)))) for _, t, _, _ in panels)
    for ax, (tp, tq), (sym, definition), title in panels:
        total = tp + tq
        ax.fill_between(x, 0, total, color="0.6", alpha=0.35)
        ax.plot(x, total, color="k", lw=2.2, label=f"integrand (sum), {definition}")
        ax.plot(x, tp, color=red, ls="--", lw=1.4, label=rf"$\frac{{1}}{{2}}\, p\, \log(p / {sym})$")
        ax.plot(x, tq, color=blue, ls="--", lw=1.4, label=rf"$\frac{{1}}{{2}}\, q\, \log(q / {sym})$")
        ax.axhline(0, color="0.3", lw=0.8)
        lo, hi = ymin - 0.1 * (ymax - ymin), ymax + 0.1 * (ymax - ymin)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("$x$")
        ax.set_ylabel("integrand (nats per unit $x$)")
        ax.set_title(title)
        twin = ax.twinx()
        twin.plot(x, data.p, color=red, lw=0.8, alpha=0.35)
        twin.plot(x, data.q, color=blue, lw=0.8, alpha=0.35)
        top = 1.15 * float(max(data.p.max(), data.q.max()))
        twin.set_ylim(lo / hi * top, top)  # zero of the densities level with zero of the integrand
        twin.set_yticks([t for t in (0.0, 0.1, 0.2, 0.3, 0.4) if t <= top])
        twin.set_ylabel("density of $p$, $q$ (faint)", color="0.5")
        twin.tick_params(axis="y", colors="0.5")
        ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        ax.set_xlim(*PLOT_XLIM)
        ax.grid(alpha=0.25)
    fig.suptitle(
        r"Figure 1: $p = \mathcal{N}(-2, 1)$, $q = \mathcal{N}(2, 2^2)$ — "
        "mean distributions and divergence integrands",
        y=1.02,
    )
    fig.tight_layout()
    return fig


def run(out: str | Path, dpi: int = 150) -> dict[str, Any]:
    """Compute, plot and save ``<out>/fig1.png``; return a summary (paths, integrals, run time)."""
    start = time.perf_counter()
    data = compute()
    fig = plot(data)
    path = save_figure(fig, Path(out) / "fig1.png", dpi=dpi)
    return {
        "png": str(path),
        "js_numeric": data.js_numeric,
        "gjs_numeric": data.gjs_numeric,
        "gjs_closed_form": data.gjs_closed_form,
        "geometric_mean_0.5": data.geometric_params[GJS_ALPHA],
        "seconds": time.perf_counter() - start,
    }
