"""Figure 1: the plotted integrands integrate to the divergences they stand for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from vae_gjs.divergences import gjs_normal
from vae_gjs.toy import fig1


@pytest.fixture(scope="module")
def data() -> fig1.Fig1Data:
    return fig1.compute()


def _log_p(x: float) -> float:
    return float(stats.norm.logpdf(x, loc=-2.0, scale=1.0))


def _log_q(x: float) -> float:
    return float(stats.norm.logpdf(x, loc=2.0, scale=2.0))


def _quad(f) -> float:
    value, err = integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=500, points=None)
    assert err < 1e-9
    return value


def test_js_integrand_integrates_to_independent_quad_value(data: fig1.Fig1Data) -> None:
    """The plotted JS integrand (Simpson on the plot grid) against scipy.integrate.quad of Eq. 5
    written independently with scipy.stats densities."""

    def integrand(x: float) -> float:
        lp, lq = _log_p(x), _log_q(x)
        lm = np.logaddexp(lp, lq) - math.log(2)
        return 0.5 * math.exp(lp) * (lp - lm) + 0.5 * math.exp(lq) * (lq - lm)

    reference = _quad(integrand)
    assert 0.0 < reference < math.log(2)
    assert data.js_numeric == pytest.approx(reference, abs=1e-9)
    # the JS integrand is pointwise non-negative ((p+q) times a Bernoulli KL)
    assert data.js_integrand.min() >= -1e-15


def test_gjs_integrand_integrates_to_closed_form(data: fig1.Fig1Data) -> None:
    """The plotted JS^{G0.5} integrand against gjs_normal (Eq. 17), both variants (equal at 0.5)."""
    args = [torch.tensor([v], dtype=torch.float64) for v in (-2.0, 0.0, 2.0, 2 * math.log(2.0))]
    closed_prime = float(gjs_normal(*args, 0.5, prime=True))
    closed_nielsen = float(gjs_normal(*args, 0.5, prime=False))
    assert closed_prime == pytest.approx(closed_nielsen, abs=1e-14)
    assert data.gjs_closed_form == pytest.approx(closed_prime, abs=1e-14)
    assert data.gjs_numeric == pytest.approx(closed_prime, abs=1e-9)


def test_gjs_integrand_quad_matches_closed_form() -> None:
    """Independent of the plotting grid: quad of ½p log(p/g) + ½q log(q/g), g = N(-1.2, 1.6)."""
    g_mean, g_std = -1.2, math.sqrt(1.6)  # Eqs. 12-13 by hand: 1/σ² = ½·1 + ½·¼, μ = σ²(-1 + ¼)

    def integrand(x: float) -> float:
        lp, lq = _log_p(x), _log_q(x)
        lg = float(stats.norm.logpdf(x, loc=g_mean, scale=g_std))
        return 0.5 * math.exp(lp) * (lp - lg) + 0.5 * math.exp(lq) * (lq - lg)

    assert _quad(integrand) == pytest.approx(fig1.gjs_closed_form(0.5), abs=1e-10)


def test_geometric_means_follow_eqs_12_13(data: fig1.Fig1Data) -> None:
    """N_α ∝ p^(1-α) q^α: α → 0 is p, α → 1 is q, α = 0.5 is N(-1.2, 1.6), densities normalised."""
    for a, (mean, std) in data.geometric_params.items():
        var = 1.0 / ((1 - a) / 1.0 + a / 4.0)
        assert std**2 == pytest.approx(var, rel=1e-12)
        assert mean == pytest.approx(var * ((1 - a) * -2.0 + a * 2.0 / 4.0), abs=1e-12)
    assert data.geometric_params[0.5] == pytest.approx((-1.2, math.sqrt(1.6)), abs=1e-12)
    assert fig1.geometric_mean_params(0.0) == pytest.approx((-2.0, 1.0), abs=1e-12)
    assert fig1.geometric_mean_params(1.0) == pytest.approx((2.0, 2.0), abs=1e-12)
    for dens in (*data.geometric.values(), data.mixture, data.p, data.q):
        assert fig1.integrate(dens, data.x) == pytest.approx(1.0, abs=1e-10)


def test_fig1_run_writes_png(tmp_path) -> None:
    summary = fig1.run(tmp_path, dpi=50)
    png = tmp_path / "fig1.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["gjs_numeric"] == pytest.approx(summary["gjs_closed_form"], abs=1e-9)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig1.png"]  # no temporary files left
