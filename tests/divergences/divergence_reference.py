"""Independent reference computations for the divergence tests.

Nothing here calls :mod:`vae_gjs` or re-types its formulas. The references are built from the
*definitions* in Deasy et al. (2020):

* ``quad_*``: 1-D numerical quadrature (Simpson's rule on a fine grid, numpy/scipy, float64) of the
  defining integrals, Eq. (1) for KL and Eqs. (7), (10), (17) for the skew-geometric JS. The
  intermediate distribution is the *numerically normalised* weighted geometric mean of the two
  densities, so Eqs. (12)-(13) are never used.
* ``mc_*``: Monte Carlo estimates (torch, float64, seeded generators) of the same integrals in
  several dimensions, returning an estimate and its standard error. ``log Z`` of the geometric mean
  is estimated by importance sampling from the defensive mixture ``r = (N1 + N2) / 2``; by the
  weighted AM-GM inequality ``n1^a n2^b <= a n1 + b n2 <= 2 r`` so the weights are bounded by 2.
* ``eq2`` / ``eq9`` / ``eq11``: the paper's general closed forms typed from the paper in numpy
  with explicit inverses and determinants (for cross-checks of the algebra, not of the definitions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy import integrate, stats

# --------------------------------------------------------------------------------------------
# 1-D quadrature of the definitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quad1D:
    """Two 1-D Gaussians ``N1(m1, v1)``, ``N2(m2, v2)`` (v = variance) tabulated on a shared grid."""

    m1: float
    v1: float
    m2: float
    v2: float

    def grid(self) -> np.ndarray:
        s1, s2 = math.sqrt(self.v1), math.sqrt(self.v2)
        lo = min(self.m1 - 14 * s1, self.m2 - 14 * s2)
        hi = max(self.m1 + 14 * s1, self.m2 + 14 * s2)
        step = min(s1, s2) / 60.0
        n = math.ceil((hi - lo) / step) | 1  # odd number of points for Simpson
        return np.linspace(lo, hi, max(n, 2001))

    def log_densities(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self.grid()
        lp1 = stats.norm.logpdf(x, self.m1, math.sqrt(self.v1))
        lp2 = stats.norm.logpdf(x, self.m2, math.sqrt(self.v2))
        return x, lp1, lp2

    def geometric_mean(self, weight2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Grid, log n1, log n2 and log of the normalised ``n1^(1-w) n2^w / Z`` (w = weight2)."""
        x, lp1, lp2 = self.log_densities()
        unnorm = (1 - weight2) * lp1 + weight2 * lp2
        shift = unnorm.max()
        log_z = shift + math.log(integrate.simpson(np.exp(unnorm - shift), x=x))
        return x, lp1, lp2, unnorm - log_z

    def log_normaliser(self, weight2: float) -> float:
        """``log ∫ n1^(1-w) n2^w dx``."""
        x, lp1, lp2 = self.log_densities()
        unnorm = (1 - weight2) * lp1 + weight2 * lp2
        shift = unnorm.max()
        return shift + math.log(integrate.simpson(np.exp(unnorm - shift), x=x))

    def kl(self, reverse: bool = False) -> float:
        """KL(N1‖N2) (or KL(N2‖N1)) by quadrature of Eq. (1)."""
        x, lp1, lp2 = self.log_densities()
        if reverse:
            lp1, lp2 = lp2, lp1
        return float(integrate.simpson(np.exp(lp1) * (lp1 - lp2), x=x))

    def moments(self, weight2: float) -> tuple[float, float]:
        """Mean and variance of the normalised geometric mean, by quadrature."""
        x, _, _, lm = self.geometric_mean(weight2)
        pm = np.exp(lm)
        mean = integrate.simpson(x * pm, x=x)
        var = integrate.simpson((x - mean) ** 2 * pm, x=x)
        return float(mean), float(var)

    def skew_js(self, alpha: float, dual: bool, prime: bool) -> float:
        """The definition: Eq. (7)/(17) or the dual Eq. (10), intermediate normalised numerically.

        prime=False: intermediate ∝ n1^(1-α) n2^α (Nielsen). prime=True: ∝ n1^α n2^(1-α) (Eq. 16).
        """
        weight2 = 1 - alpha if prime else alpha
        x, lp1, lp2, lm = self.geometric_mean(weight2)
        if dual:
            pm = np.exp(lm)
            kl_1 = integrate.simpson(pm * (lm - lp1), x=x)
            kl_2 = integrate.simpson(pm * (lm - lp2), x=x)
        else:
            kl_1 = integrate.simpson(np.exp(lp1) * (lp1 - lm), x=x)
            kl_2 = integrate.simpson(np.exp(lp2) * (lp2 - lm), x=x)
        return float((1 - alpha) * kl_1 + alpha * kl_2)


def quad_skew_js_diag(
    mu1: np.ndarray,
    var1: np.ndarray,
    mu2: np.ndarray,
    var2: np.ndarray,
    alpha: float,
    dual: bool,
    prime: bool,
) -> float:
    """Quadrature of the definition for diagonal Gaussians: a product of independent coordinates has
    a product geometric mean, and KL adds over independent coordinates, so the d-dimensional value
    is the sum of 1-D quadratures."""
    return sum(
        Quad1D(float(a), float(b), float(c), float(d)).skew_js(alpha, dual, prime)
        for a, b, c, d in zip(mu1, var1, mu2, var2, strict=True)
    )


# --------------------------------------------------------------------------------------------
# Monte Carlo estimates of the definitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gauss:
    """A float64 multivariate Gaussian: seeded sampler, log-pdf from torch.distributions."""

    mean: torch.Tensor  # [n]
    cov: torch.Tensor  # [n, n]

    @staticmethod
    def diag(mean: torch.Tensor, var: torch.Tensor) -> Gauss:
        return Gauss(mean.double(), torch.diag(var.double()))

    @cached_property
    def dist(self) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(
            self.mean, covariance_matrix=self.cov, validate_args=False
        )

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        eps = torch.randn(n, self.mean.shape[0], generator=gen, dtype=torch.float64)
        return self.mean + eps @ self.dist.scale_tril.T

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x)


def _mean_se(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


def mc_kl(p1: Gauss, p2: Gauss, n: int, gen: torch.Generator) -> tuple[float, float]:
    """Eq. (1): E_{x~N1}[log n1(x) - log n2(x)], with its standard error."""
    x = p1.sample(n, gen)
    return _mean_se(p1.log_prob(x) - p2.log_prob(x))


def _mixture_draw(
    p1: Gauss, p2: Gauss, n: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` draws from r = (N1 + N2)/2: ``log n1``, ``log n2`` and ``log r`` at the draws."""
    pick = torch.rand(n, 1, generator=gen, dtype=torch.float64) < 0.5
    x = torch.where(pick, p1.sample(n, gen), p2.sample(n, gen))
    l1, l2 = p1.log_prob(x), p2.log_prob(x)
    return l1, l2, torch.logaddexp(l1, l2) - math.log(2.0)


def mc_log_normaliser(
    p1: Gauss, p2: Gauss, weight2: float, n: int, gen: torch.Generator
) -> tuple[float, float]:
    """``log Z = log ∫ n1^(1-w) n2^w`` by importance sampling from (N1 + N2)/2, with the
    delta-method standard error of the log."""
    l1, l2, lr = _mixture_draw(p1, p2, n, gen)
    z, se_z = _mean_se(torch.exp((1 - weight2) * l1 + weight2 * l2 - lr))
    return math.log(z), se_z / z


def mc_skew_js(
    p1: Gauss, p2: Gauss, alpha: float, dual: bool, prime: bool, n: int, gen: torch.Generator
) -> tuple[float, float]:
    """Monte Carlo estimate (and standard error) of Eq. (7)/(17), or of the dual Eq. (10).

    With ``l = (1-w) log n1 + w log n2`` the unnormalised log geometric mean (w = α, or 1 - α for
    the primed variant) and ``log n_m = l - log Z``:

    * JS   = (1-α) E_{N1}[log n1 - l] + α E_{N2}[log n2 - l] + log Z,
    * JS*  = E_{N_m}[l - (1-α) log n1 - α log n2] - log Z, the expectation under N_m taken by
      self-normalised importance sampling from (N1 + N2)/2 (N_m's parameters are never used).

    Independent sample batches are used for each part; the standard errors add in quadrature.
    """
    w2 = 1 - alpha if prime else alpha
    log_z, se_log_z = mc_log_normaliser(p1, p2, w2, n, gen)
    if not dual:
        y1, y2 = p1.sample(n, gen), p2.sample(n, gen)
        f1 = w2 * (p1.log_prob(y1) - p2.log_prob(y1))  # log n1 - l at y1 ~ N1
        f2 = (1 - w2) * (p2.log_prob(y2) - p1.log_prob(y2))  # log n2 - l at y2 ~ N2
        est = (1 - alpha) * f1.mean() + alpha * f2.mean() + log_z
        var = ((1 - alpha) ** 2 * f1.var() + alpha**2 * f2.var()) / n
        return float(est), math.sqrt(float(var) + se_log_z**2)
    l1, l2, lr = _mixture_draw(p1, p2, n, gen)
    lu = (1 - w2) * l1 + w2 * l2
    h = lu - (1 - alpha) * l1 - alpha * l2
    w = torch.softmax(lu - lr, dim=0)  # self-normalised importance weights of N_m against r
    expect = (w * h).sum()
    var_expect = (w.pow(2) * (h - expect).pow(2)).sum()
    return float(expect) - log_z, math.sqrt(float(var_expect) + se_log_z**2)


# --------------------------------------------------------------------------------------------
# The paper's general closed forms typed in numpy (Eqs. 2, 9, 11, 12, 13)
# --------------------------------------------------------------------------------------------


def eq2(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Eq. (2): ½(tr(Σ2⁻¹Σ1) + ln(|Σ2|/|Σ1|) + (μ2-μ1)ᵀΣ2⁻¹(μ2-μ1) - n)."""
    inv2 = np.linalg.inv(cov2)
    diff = mu2 - mu1
    return 0.5 * float(
        np.trace(inv2 @ cov1)
        + np.log(np.linalg.det(cov2) / np.linalg.det(cov1))
        + diff @ inv2 @ diff
        - len(mu1)
    )


def eq12_13(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, a: float
) -> tuple[np.ndarray, np.ndarray]:
    """Eqs. (12)-(13) with skew ``a``: Σ_a = ((1-a)Σ1⁻¹ + aΣ2⁻¹)⁻¹, μ_a = Σ_a((1-a)Σ1⁻¹μ1 + aΣ2⁻¹μ2)."""
    inv1, inv2 = np.linalg.inv(cov1), np.linalg.inv(cov2)
    cov_a = np.linalg.inv((1 - a) * inv1 + a * inv2)
    mu_a = cov_a @ ((1 - a) * inv1 @ mu1 + a * inv2 @ mu2)
    return mu_a, cov_a


def eq9(
    mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, alpha: float, prime: bool
) -> float:
    """Eq. (9) with the intermediate of Eqs. (12)-(13) at skew α (prime=False) or 1-α (prime=True:
    α → 1-α in the intermediate only, the weights (1-α, α) are unchanged)."""
    mu_a, cov_a = eq12_13(mu1, cov1, mu2, cov2, 1 - alpha if prime else alpha)
    inv_a = np.linalg.inv(cov_a)
    d1, d2 = mu_a - mu1, mu_a - mu2
    return 0.5 * float(
        np.trace(inv_a @ ((1 - alpha) * cov1 + alpha * cov2))
        + np.log(np.linalg.det(cov_a) / (np.linalg.det(cov1) ** (1 - alpha) * np.linalg.det(cov2) ** alpha))
        + (1 - alpha) * d1 @ inv_a @ d1
        + alpha * d2 @ inv_a @ d2
        - len(mu1)
    )


def eq11(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray, alpha: float) -> float:
    """Eq. (11): ½((1-α)μ1ᵀΣ1⁻¹μ1 + αμ2ᵀΣ2⁻¹μ2 - μ_αᵀΣ_α⁻¹μ_α + log(|Σ1|^(1-α)|Σ2|^α / |Σ_α|)),
    Nielsen's intermediate (Eqs. 12-13 at α)."""
    mu_a, cov_a = eq12_13(mu1, cov1, mu2, cov2, alpha)
    return 0.5 * float(
        (1 - alpha) * mu1 @ np.linalg.inv(cov1) @ mu1
        + alpha * mu2 @ np.linalg.inv(cov2) @ mu2
        - mu_a @ np.linalg.inv(cov_a) @ mu_a
        + np.log(np.linalg.det(cov1) ** (1 - alpha) * np.linalg.det(cov2) ** alpha / np.linalg.det(cov_a))
    )


def random_spd(n: int, rng: np.random.Generator, low: float = 0.3, high: float = 3.0) -> np.ndarray:
    """A random SPD matrix with eigenvalues in [low, high] and a random orientation."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * rng.uniform(low, high, n)) @ q.T
