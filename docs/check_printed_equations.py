"""Compare the paper's printed Proposition 2 (Eqs. 23-26) with the definitions (Eqs. 7, 10, 16-17).

Deasy et al. (2020), Proposition 2, for N1 = N(μ, σ²) (one coordinate) and N2 = N(0, 1):

    Eq. 23: JS^{Gα}  = ½ [((1-α)σ² + α)/σ_α² + log(σ_α²/σ^{2(1-α)}) + (1-α)(μ_α-μ)²/σ_α² + αμ_α²/σ_α² - 1]
    Eq. 24: JS*^{Gα} = ½ [μ²/σ² - μ_α²/σ_α² + log(σ^{2(1-α)}/σ_α²)]
    Eq. 25: σ_α² = σ² / ((1-α) + ασ²)
    Eq. 26: μ_α  = σ_α² (1-α) μ / σ²

This script evaluates those printed formulas (with Eqs. 25-26 as printed, and with α → 1-α in
Eqs. 25-26 only) next to the *definitions*, computed independently of every closed form by
quadrature: the intermediate is the numerically normalised geometric mean n1^(1-w) n2^w / Z on a
fine grid (w = α for Nielsen's JS^{Gα}; w = 1-α for the paper's JS^{Gα'}, Eq. 16) and the weighted
KL integrals of Eq. (7)/(17) and of the dual Eq. (10) are integrated with Simpson's rule. The last
columns are the library's values (``vae_gjs.divergences.gjs_normal``, default ``prime=True``).

Run: ``.venv/bin/python docs/check_printed_equations.py`` (a second or two, CPU only); it prints
Markdown tables that are pasted into docs/divergences.md.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

SETTINGS: list[tuple[float, float, list[float]]] = [
    (1.0, 0.5, [0.0, 1e-6, 0.1, 0.5, 0.9, 1 - 1e-6, 1.0]),
    (-2.0, 3.0, [0.1, 0.5, 0.9]),
    (0.5, 0.1, [0.1, 0.5, 0.9]),
]


# ---- the printed formulas (d = 1, N2 = N(0, 1)) ------------------------------------------------


def eq25_26(mu: float, var: float, a: float) -> tuple[float, float]:
    """Eqs. (25)-(26) as printed, at skew ``a``: (μ_a, σ_a²)."""
    var_a = var / ((1 - a) + a * var)
    return var_a * (1 - a) * mu / var, var_a


def eq23(mu: float, var: float, alpha: float, mu_a: float, var_a: float) -> float:
    """Eq. (23) as printed, given the intermediate's (μ_a, σ_a²)."""
    return 0.5 * (
        ((1 - alpha) * var + alpha) / var_a
        + math.log(var_a / var ** (1 - alpha))
        + (1 - alpha) * (mu_a - mu) ** 2 / var_a
        + alpha * mu_a**2 / var_a
        - 1
    )


def eq24(mu: float, var: float, alpha: float, mu_a: float, var_a: float, weight_mu2: float = 1.0) -> float:
    """Eq. (24) as printed (``weight_mu2 = 1``); ``weight_mu2 = 1 - α`` is Eq. (11) with N2 = N(0, 1)."""
    return 0.5 * (weight_mu2 * mu**2 / var - mu_a**2 / var_a + math.log(var ** (1 - alpha) / var_a))


# ---- the definitions by quadrature ---------------------------------------------------------------


def _grid(mu: float, var: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = math.sqrt(var)
    lo, hi = min(mu - 14 * s, -14.0), max(mu + 14 * s, 14.0)
    x = np.linspace(lo, hi, (int((hi - lo) / (min(s, 1.0) / 60)) | 1) + 2)
    return x, stats.norm.logpdf(x, mu, s), stats.norm.logpdf(x, 0.0, 1.0)


def definition(mu: float, var: float, alpha: float, dual: bool, weight2: float) -> float:
    """(1-α)·KL(N1‖M) + α·KL(N2‖M), or (1-α)·KL(M‖N1) + α·KL(M‖N2) if ``dual``, where
    M = n1^(1-weight2) n2^weight2 / Z is normalised numerically."""
    x, lp1, lp2 = _grid(mu, var)
    unnorm = (1 - weight2) * lp1 + weight2 * lp2
    lm = unnorm - math.log(integrate.simpson(np.exp(unnorm), x=x))
    if dual:
        pm = np.exp(lm)
        parts = integrate.simpson(pm * (lm - lp1), x=x), integrate.simpson(pm * (lm - lp2), x=x)
    else:
        parts = (
            integrate.simpson(np.exp(lp1) * (lp1 - lm), x=x),
            integrate.simpson(np.exp(lp2) * (lp2 - lm), x=x),
        )
    return float((1 - alpha) * parts[0] + alpha * parts[1])


def neg_log_normaliser(mu: float, var: float, weight2: float) -> float:
    """-log ∫ n1^(1-w) n2^w dx by quadrature."""
    x, lp1, lp2 = _grid(mu, var)
    return -math.log(integrate.simpson(np.exp((1 - weight2) * lp1 + weight2 * lp2), x=x))


def kl_pair(mu: float, var: float) -> tuple[float, float]:
    """(KL(N1‖N2), KL(N2‖N1)) by quadrature of Eq. (1)."""
    x, lp1, lp2 = _grid(mu, var)
    return (
        float(integrate.simpson(np.exp(lp1) * (lp1 - lp2), x=x)),
        float(integrate.simpson(np.exp(lp2) * (lp2 - lp1), x=x)),
    )


def library(mu: float, var: float, alpha: float, dual: bool) -> float:
    """The library's ``gjs_normal`` (prime=True, the paper's JS^{Gα'}) in float64."""
    import torch

    from vae_gjs.divergences import gjs_normal

    t = torch.tensor
    args = (t([mu], dtype=torch.float64), t([math.log(var)], dtype=torch.float64))
    zeros = torch.zeros(1, dtype=torch.float64)
    return float(gjs_normal(*args, zeros, zeros, alpha, dual=dual, prime=True))


# ---- tables ----------------------------------------------------------------------------------------


def rows() -> list[dict[str, float]]:
    """One dict per (μ, σ², α) with every printed and defined quantity."""
    out = []
    for mu, var, alphas in SETTINGS:
        kl_12, kl_21 = kl_pair(mu, var)
        for alpha in alphas:
            printed = eq25_26(mu, var, alpha)
            swapped = eq25_26(mu, var, 1 - alpha)
            out.append(
                {
                    "mu": mu,
                    "var": var,
                    "alpha": alpha,
                    "kl_12": kl_12,
                    "kl_21": kl_21,
                    "eq23": eq23(mu, var, alpha, *printed),
                    "eq23_swapped": eq23(mu, var, alpha, *swapped),
                    "js_nielsen": definition(mu, var, alpha, dual=False, weight2=alpha),
                    "js_prime": definition(mu, var, alpha, dual=False, weight2=1 - alpha),
                    "lib_js": library(mu, var, alpha, dual=False),
                    "eq24": eq24(mu, var, alpha, *printed),
                    "eq24_swapped": eq24(mu, var, alpha, *swapped),
                    "eq11": eq24(mu, var, alpha, *printed, weight_mu2=1 - alpha),
                    "dual_nielsen": definition(mu, var, alpha, dual=True, weight2=alpha),
                    "dual_prime": definition(mu, var, alpha, dual=True, weight2=1 - alpha),
                    "neg_log_z_prime": neg_log_normaliser(mu, var, 1 - alpha),
                    "lib_dual": library(mu, var, alpha, dual=True),
                }
            )
    return out


def _fmt(value: float) -> str:
    text = f"{value:.6f}"
    return "0.000000" if text == "-0.000000" else text


def _alpha(value: float) -> str:
    return {1e-6: "1e-6", 1 - 1e-6: "1−1e-6"}.get(value, f"{value:g}")


def tables(data: list[dict[str, float]]) -> str:
    js_head = (
        "| μ | σ² | α | KL(N1‖N2) | KL(N2‖N1) | Eq. 23, Eqs. 25–26 as printed | Eq. 23, α→1−α in 25–26 "
        "| def. JS^{Gα} (Nielsen) | def. JS^{Gα'} (Eq. 17) | library `gjs_normal` |"
    )
    dual_head = (
        "| μ | σ² | α | KL(N1‖N2) | KL(N2‖N1) | Eq. 24 as printed | Eq. 24, α→1−α in 25–26 "
        "| Eq. 24 with (1−α)μ²/σ² (= Eq. 11) | def. JS\\*^{Gα} (Nielsen) | def. JS\\*^{Gα'} "
        "| −log Z_{α'} | library `gjs_normal(dual=True)` |"
    )
    js_keys = ["kl_12", "kl_21", "eq23", "eq23_swapped", "js_nielsen", "js_prime", "lib_js"]
    dual_keys = [
        "kl_12",
        "kl_21",
        "eq24",
        "eq24_swapped",
        "eq11",
        "dual_nielsen",
        "dual_prime",
        "neg_log_z_prime",
        "lib_dual",
    ]
    lines = ["Skew-geometric JS (Eq. 23 against Eqs. 7 and 17):", "", js_head]
    lines.append("|" + "---|" * (3 + len(js_keys)))
    for r in data:
        cells = [f"{r['mu']:g}", f"{r['var']:g}", _alpha(r["alpha"])] + [_fmt(r[k]) for k in js_keys]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Dual (Eq. 24 against Eqs. 10 and 11):", "", dual_head]
    lines.append("|" + "---|" * (3 + len(dual_keys)))
    for r in data:
        cells = [f"{r['mu']:g}", f"{r['var']:g}", _alpha(r["alpha"])] + [_fmt(r[k]) for k in dual_keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(tables(rows()))
