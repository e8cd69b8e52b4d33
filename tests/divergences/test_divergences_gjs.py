"""Skew-geometric Jensen-Shannon divergences against their definitions (Eqs. 7-19).

The definitions are checked three independent ways: 1-D quadrature of the integrals with a
numerically normalised geometric mean, Monte Carlo in several dimensions with log Z estimated by
importance sampling, and the paper's general closed forms Eqs. (9), (11) typed in numpy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from tests.divergences.divergence_reference import (
    Gauss,
    Quad1D,
    eq9,
    eq11,
    eq12_13,
    mc_skew_js,
    quad_skew_js_diag,
    random_spd,
)
from vae_gjs.divergences import (
    geometric_mean_mvn,
    geometric_mean_normal,
    gjs_mvn,
    gjs_normal,
    gjs_normal_terms,
    kl_mvn,
    kl_normal,
)

F64 = torch.float64
VARIANTS = list(itertools.product([False, True], [False, True]))  # (dual, prime)
VARIANT_IDS = [f"{'dual' if d else 'js'}-{'prime' if p else 'nielsen'}" for d, p in VARIANTS]

# (μ1, σ1², μ2, σ2²) for the 1-D quadrature checks
CASES_1D = [
    (1.0, 0.5, 0.0, 1.0),  # the Proposition-2 setting, N2 = N(0, 1)
    (-2.0, 3.0, 0.5, 0.2),
    (0.0, 0.1, 2.0, 4.0),
    (0.7, 1.3, 0.7, 1.3),  # equal: every variant is 0
]
ALPHAS = [0.0, 0.1, 0.37, 0.5, 0.9, 1.0]


def _t(*values: float) -> list[torch.Tensor]:
    return [torch.tensor([v], dtype=F64) for v in values]


def _random_diag(seed: int, batch: int, d: int, spread: float = 3.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    mu1 = 2 * torch.randn(batch, d, generator=g, dtype=F64)
    mu2 = 2 * torch.randn(batch, d, generator=g, dtype=F64)
    lv1 = torch.empty(batch, d, dtype=F64).uniform_(-spread, spread, generator=g)
    lv2 = torch.empty(batch, d, dtype=F64).uniform_(-spread, spread, generator=g)
    return [x.to(dtype) for x in (mu1, lv1, mu2, lv2)]


# ---- (a) quadrature of the definitions ---------------------------------------------------------


@pytest.mark.parametrize(("dual", "prime"), VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("case", CASES_1D, ids=lambda c: "m1={}_v1={}_m2={}_v2={}".format(*c))
def test_gjs_normal_matches_quadrature_of_definition_1d(case, dual, prime):
    """Eq. (7)/(17) and the dual Eq. (10): the intermediate is n1^(1-w) n2^w / Z normalised on a
    grid (w = α for Nielsen, w = 1-α for the primed variant of Eq. 16); absolute error < 1e-9."""
    m1, v1, m2, v2 = case
    mu1, lv1, mu2, lv2 = _t(m1, math.log(v1), m2, math.log(v2))
    quad = Quad1D(m1, v1, m2, v2)
    for alpha in ALPHAS:
        ours = float(gjs_normal(mu1, lv1, mu2, lv2, alpha, dual, prime))
        assert ours == pytest.approx(quad.skew_js(alpha, dual, prime), abs=1e-9), alpha


@pytest.mark.parametrize(("dual", "prime"), VARIANTS, ids=VARIANT_IDS)
def test_gjs_normal_diagonal_matches_quadrature_per_coordinate(dual, prime):
    mu1, lv1, mu2, lv2 = _random_diag(0, batch=3, d=3, spread=1.5)
    ours = gjs_normal(mu1, lv1, mu2, lv2, 0.3, dual, prime)
    for i in range(3):
        ref = quad_skew_js_diag(
            mu1[i].numpy(), lv1[i].exp().numpy(), mu2[i].numpy(), lv2[i].exp().numpy(), 0.3, dual, prime
        )
        assert float(ours[i]) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("weight", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_geometric_mean_normal_matches_quadrature_moments(weight):
    """Eqs. (12)-(13) in 1-D: mean and variance of the numerically normalised n1^(1-w) n2^w."""
    m1, v1, m2, v2 = -1.0, 0.4, 2.0, 2.5
    mu, lv = geometric_mean_normal(*_t(m1, math.log(v1), m2, math.log(v2)), weight)
    ref_mean, ref_var = Quad1D(m1, v1, m2, v2).moments(weight)
    assert float(mu) == pytest.approx(ref_mean, abs=1e-9)
    assert math.exp(float(lv)) == pytest.approx(ref_var, rel=1e-8)


def test_geometric_mean_is_the_normalised_weighted_product():
    """Characterisation of N_w ∝ N1^(1-w) N2^w without Eqs. (12)-(13): log N_w(x) minus
    (1-w) log N1(x) + w log N2(x) is the same constant at every x (full and diagonal covariances)."""
    rng = np.random.default_rng(1)
    cov1, cov2 = torch.tensor(random_spd(3, rng)), torch.tensor(random_spd(3, rng))
    mu1, mu2 = torch.tensor(rng.standard_normal(3)), torch.tensor(rng.standard_normal(3))
    x = torch.tensor(rng.standard_normal((50, 3)) * 2)
    w = 0.35
    mu_w, cov_w = geometric_mean_mvn(mu1, cov1, mu2, cov2, w)
    gap = MultivariateNormal(mu_w, cov_w).log_prob(x) - (
        (1 - w) * MultivariateNormal(mu1, cov1).log_prob(x) + w * MultivariateNormal(mu2, cov2).log_prob(x)
    )
    assert float(gap.max() - gap.min()) < 1e-10
    lv1, lv2 = cov1.diagonal().log(), cov2.diagonal().log()
    mu_d, lv_d = geometric_mean_normal(mu1, lv1, mu2, lv2, w)

    def diag_lp(m, lv):
        return MultivariateNormal(m, torch.diag(lv.exp())).log_prob(x)

    gap = diag_lp(mu_d, lv_d) - ((1 - w) * diag_lp(mu1, lv1) + w * diag_lp(mu2, lv2))
    assert float(gap.max() - gap.min()) < 1e-10


def test_geometric_mean_normal_extreme_log_variances():
    """The log-sum-exp form stays exact where the variances themselves overflow/underflow:
    σ_w² = 1 / ((1-w) e^(-λ1) + w e^(-λ2)) with λ1 = -300, λ2 = 300."""
    w = 0.25
    mu, lv = geometric_mean_normal(*_t(3.0, -300.0, -5.0, 300.0), w)
    assert float(lv) == pytest.approx(-300.0 - math.log(1 - w), abs=1e-12)
    assert float(mu) == pytest.approx(3.0, abs=1e-12)


# ---- (b) Monte Carlo in several dimensions -------------------------------------------------------


MC_CASES = [(0.2, False, True), (0.7, False, False), (0.3, True, True), (0.8, True, False), (0.6, True, True)]


@pytest.mark.parametrize(("alpha", "dual", "prime"), MC_CASES)
def test_gjs_normal_matches_monte_carlo_definition(alpha, dual, prime):
    """d = 3 diagonal Gaussians; log Z of the geometric mean by importance sampling; the dual's
    expectation under N_m by self-normalised importance sampling. Within 5 standard errors."""
    mu1, lv1, mu2, lv2 = _random_diag(20, batch=1, d=3, spread=1.0)
    p1, p2 = Gauss.diag(mu1[0], lv1[0].exp()), Gauss.diag(mu2[0], lv2[0].exp())
    est, se = mc_skew_js(p1, p2, alpha, dual, prime, 40_000, torch.Generator().manual_seed(int(alpha * 10)))
    value = float(gjs_normal(mu1, lv1, mu2, lv2, alpha, dual, prime))
    assert se < 0.03 * (1 + value)
    assert abs(est - value) < 5 * se, (est, se, value)


@pytest.mark.parametrize(("alpha", "dual"), [(0.25, False), (0.6, True)])
def test_gjs_mvn_matches_monte_carlo_definition(alpha, dual):
    rng = np.random.default_rng(2)
    cov1, cov2 = random_spd(3, rng), random_spd(3, rng)
    mu1, mu2 = rng.standard_normal(3), rng.standard_normal(3)
    p1, p2 = Gauss(torch.tensor(mu1), torch.tensor(cov1)), Gauss(torch.tensor(mu2), torch.tensor(cov2))
    est, se = mc_skew_js(p1, p2, alpha, dual, True, 40_000, torch.Generator().manual_seed(11))
    value = float(gjs_mvn(p1.mean, p1.cov, p2.mean, p2.cov, alpha, dual))
    assert se < 0.03 * (1 + value)
    assert abs(est - value) < 5 * se, (est, se, value)


# ---- (c) the paper's closed forms, Eqs. (9) and (11) -------------------------------------------


def _spd_batch(seed: int, batch: int = 6, n: int = 3):
    rng = np.random.default_rng(seed)
    cov1 = np.stack([random_spd(n, rng) for _ in range(batch)])
    cov2 = np.stack([random_spd(n, rng) for _ in range(batch)])
    return rng.standard_normal((batch, n)), cov1, rng.standard_normal((batch, n)), cov2


@pytest.mark.parametrize("alpha", [0.0, 0.15, 0.5, 0.8, 1.0])
def test_gjs_mvn_matches_eq9_and_eq11(alpha):
    """Eq. (9) for JS^{Gα} (Nielsen) and, with α → 1-α in the intermediate only, for JS^{Gα'};
    Eq. (11) for Nielsen's dual. Relative error < 1e-9."""
    mu1, cov1, mu2, cov2 = _spd_batch(3)
    args = [torch.tensor(v) for v in (mu1, cov1, mu2, cov2)]
    js_n = gjs_mvn(*args, alpha, dual=False, prime=False)
    js_p = gjs_mvn(*args, alpha, dual=False, prime=True)
    dual_n = gjs_mvn(*args, alpha, dual=True, prime=False)
    for i in range(len(mu1)):
        row = (mu1[i], cov1[i], mu2[i], cov2[i])
        assert float(js_n[i]) == pytest.approx(eq9(*row, alpha, prime=False), rel=1e-9, abs=1e-12)
        assert float(js_p[i]) == pytest.approx(eq9(*row, alpha, prime=True), rel=1e-9, abs=1e-12)
        assert float(dual_n[i]) == pytest.approx(eq11(*row, alpha), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("dual", "prime"), VARIANTS, ids=VARIANT_IDS)
def test_gjs_mvn_matches_torch_distributions(dual, prime):
    """Weighted KLs to the intermediate of Eqs. (12)-(13) (skew α, or 1-α when primed), each KL by
    torch.distributions; batched random SPD covariances."""
    alpha = 0.3
    mu1, cov1, mu2, cov2 = _spd_batch(4)
    ours = gjs_mvn(*[torch.tensor(v) for v in (mu1, cov1, mu2, cov2)], alpha, dual, prime)
    assert ours.shape == (len(mu1),)
    for i in range(len(mu1)):
        mu_m, cov_m = eq12_13(mu1[i], cov1[i], mu2[i], cov2[i], 1 - alpha if prime else alpha)
        n1 = MultivariateNormal(torch.tensor(mu1[i]), torch.tensor(cov1[i]))
        n2 = MultivariateNormal(torch.tensor(mu2[i]), torch.tensor(cov2[i]))
        nm = MultivariateNormal(torch.tensor(mu_m), torch.tensor(cov_m))
        if dual:
            ref = (1 - alpha) * kl_divergence(nm, n1) + alpha * kl_divergence(nm, n2)
        else:
            ref = (1 - alpha) * kl_divergence(n1, nm) + alpha * kl_divergence(n2, nm)
        assert float(ours[i]) == pytest.approx(float(ref), rel=1e-9)


@pytest.mark.parametrize(("dual", "prime"), VARIANTS, ids=VARIANT_IDS)
def test_gjs_mvn_with_diagonal_covariances_equals_gjs_normal(dual, prime):
    mu1, lv1, mu2, lv2 = _random_diag(5, batch=16, d=4)
    full = gjs_mvn(mu1, torch.diag_embed(lv1.exp()), mu2, torch.diag_embed(lv2.exp()), 0.42, dual, prime)
    torch.testing.assert_close(full, gjs_normal(mu1, lv1, mu2, lv2, 0.42, dual, prime), rtol=1e-9, atol=1e-10)


def test_gjs_normal_terms_are_the_kls_to_the_intermediate():
    mu1, lv1, mu2, lv2 = _random_diag(6, batch=8, d=3)
    alpha = 0.3
    mu_m, lv_m = geometric_mean_normal(mu1, lv1, mu2, lv2, 1 - alpha)  # the primed intermediate
    kl_1, kl_2 = gjs_normal_terms(mu1, lv1, mu2, lv2, alpha)
    torch.testing.assert_close(kl_1, kl_normal(mu1, lv1, mu_m, lv_m))
    torch.testing.assert_close(kl_2, kl_normal(mu2, lv2, mu_m, lv_m))
    dual_1, dual_2 = gjs_normal_terms(mu1, lv1, mu2, lv2, alpha, dual=True)
    torch.testing.assert_close(dual_1, kl_normal(mu_m, lv_m, mu1, lv1))
    torch.testing.assert_close(dual_2, kl_normal(mu_m, lv_m, mu2, lv2))
    torch.testing.assert_close(gjs_normal(mu1, lv1, mu2, lv2, alpha), (1 - alpha) * kl_1 + alpha * kl_2)
    torch.testing.assert_close(
        gjs_normal(mu1, lv1, mu2, lv2, alpha, dual=True), (1 - alpha) * dual_1 + alpha * dual_2
    )


# ---- Proposition 1 and the limits of Eqs. (14)-(15) ------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_proposition1_limits(dtype):
    """JS^{Gα'}: α→0 gives KL(N1‖N2), α→1 gives KL(N2‖N1); the dual the other way round (Eqs. 18-19).

    Exact α = 0 and 1: relative error < 1e-12 (float64) / 1e-5 (float32). α = 1e-6 and 1 - 1e-6:
    the gap is first order in α, < 1e-3·(1 + KL) on these inputs (KLs up to several hundred);
    float64 also at α = 1e-9: < 1e-6·(1 + KL)."""
    mu1, lv1, mu2, lv2 = _random_diag(7, batch=256, d=4, dtype=dtype)
    k12 = kl_normal(*[x.double() for x in (mu1, lv1, mu2, lv2)])
    k21 = kl_normal(*[x.double() for x in (mu2, lv2, mu1, lv1)])
    exact_tol = 1e-12 if dtype == torch.float64 else 1e-5
    eps_tol = [(1e-6, 1e-3)] + ([(1e-9, 1e-6)] if dtype == torch.float64 else [])
    for dual in (False, True):
        at_0, at_1 = (k21, k12) if dual else (k12, k21)
        for alpha, target, tol in [(0.0, at_0, exact_tol), (1.0, at_1, exact_tol)] + [
            (a, t, tol) for eps, tol in eps_tol for a, t in ((eps, at_0), (1 - eps, at_1))
        ]:
            value = gjs_normal(mu1, lv1, mu2, lv2, alpha, dual=dual).double()
            assert torch.isfinite(value).all()
            gap = ((value - target).abs() / (1 + target)).max().item()
            assert gap < tol, (dual, alpha, gap)


def test_nielsen_limits_are_zero_eqs14_15():
    """prime=False: both ends are 0 (Eqs. 14-15): exactly at α ∈ {0, 1}, < 1e-5·(1 + KL12 + KL21)
    at α = 1e-6 and 1 - 1e-6; and it is *not* the KL there (the variants really differ)."""
    mu1, lv1, mu2, lv2 = _random_diag(8, batch=256, d=4)
    scale = 1 + kl_normal(mu1, lv1, mu2, lv2) + kl_normal(mu2, lv2, mu1, lv1)
    for dual in (False, True):
        for alpha in (0.0, 1.0):
            assert torch.all(gjs_normal(mu1, lv1, mu2, lv2, alpha, dual=dual, prime=False).abs() < 1e-12)
        for alpha in (1e-6, 1 - 1e-6):
            value = gjs_normal(mu1, lv1, mu2, lv2, alpha, dual=dual, prime=False)
            assert torch.all(value.abs() / scale < 1e-5)
            primed = gjs_normal(mu1, lv1, mu2, lv2, alpha, dual=dual, prime=True)
            assert torch.all(primed / scale > 1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_exact_alpha_edges_are_finite_including_gradients(dtype):
    mu1, lv1, mu2, lv2 = [x.requires_grad_() for x in _random_diag(9, batch=32, d=3, dtype=dtype)]
    for (dual, prime), alpha in itertools.product(VARIANTS, (0.0, 1.0)):
        value = gjs_normal(mu1, lv1, mu2, lv2, alpha, dual, prime)
        assert torch.isfinite(value).all()
        grads = torch.autograd.grad(value.sum(), [mu1, lv1, mu2, lv2])
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("dual", "prime"), VARIANTS, ids=VARIANT_IDS)
def test_symmetry_at_one_half_and_swap_identity(dual, prime):
    """At α = 0.5 every variant (JS and dual, primed or not) is symmetric: D(N1‖N2) = D(N2‖N1); in
    general D_α(N1‖N2) = D_{1-α}(N2‖N1) (same intermediate, same weights); and at α = 0.3 it is
    not symmetric."""
    mu1, lv1, mu2, lv2 = _random_diag(10, batch=128, d=3)
    forward = gjs_normal(mu1, lv1, mu2, lv2, 0.5, dual, prime)
    torch.testing.assert_close(
        forward, gjs_normal(mu2, lv2, mu1, lv1, 0.5, dual, prime), rtol=1e-12, atol=1e-12
    )
    for alpha in (0.1, 0.3, 0.77):
        torch.testing.assert_close(
            gjs_normal(mu1, lv1, mu2, lv2, alpha, dual, prime),
            gjs_normal(mu2, lv2, mu1, lv1, 1 - alpha, dual, prime),
            rtol=1e-11,
            atol=1e-11,
        )
    there = gjs_normal(mu1, lv1, mu2, lv2, 0.3, dual, prime)
    skewed = there - gjs_normal(mu2, lv2, mu1, lv1, 0.3, dual, prime)
    assert (skewed.abs() > 1e-3).float().mean() > 0.9


def test_primed_and_nielsen_coincide_only_at_one_half():
    mu1, lv1, mu2, lv2 = _random_diag(11, batch=64, d=3)
    for dual in (False, True):
        torch.testing.assert_close(
            gjs_normal(mu1, lv1, mu2, lv2, 0.5, dual, True), gjs_normal(mu1, lv1, mu2, lv2, 0.5, dual, False)
        )
        primed = gjs_normal(mu1, lv1, mu2, lv2, 0.2, dual, True)
        diff = primed - gjs_normal(mu1, lv1, mu2, lv2, 0.2, dual, False)
        assert torch.all(diff.abs() > 1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_zero_for_equal_distributions(dtype):
    mu, lv, _, _ = _random_diag(12, batch=64, d=5, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for (dual, prime), alpha in itertools.product(VARIANTS, [0.0, 1.0, *torch.rand(5, generator=g).tolist()]):
        assert gjs_normal(mu, lv, mu, lv, alpha, dual, prime).abs().max() < tol
    cov = torch.diag_embed(lv.double().exp())
    assert gjs_mvn(mu.double(), cov, mu.double(), cov, 0.3).abs().max() < 1e-10


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_non_negative_on_random_inputs(dtype):
    """40 random α (plus the edges) × 256 random pairs with log-variances in [-6, 6], all four
    variants: every value is >= 0 exactly (each KL part is a sum of expm1(r) - r >= 0 and squares)."""
    mu1, lv1, mu2, lv2 = _random_diag(13, batch=256, d=4, spread=6.0, dtype=dtype)
    alphas = [0.0, 1.0, *torch.rand(40, generator=torch.Generator().manual_seed(1)).tolist()]
    for (dual, prime), alpha in itertools.product(VARIANTS, alphas):
        assert gjs_normal(mu1, lv1, mu2, lv2, alpha, dual, prime).min() >= 0, (dual, prime, alpha)
    rng = np.random.default_rng(3)
    cov1 = torch.tensor(np.stack([random_spd(3, rng) for _ in range(64)]))
    cov2 = torch.tensor(np.stack([random_spd(3, rng) for _ in range(64)]))
    mu = torch.tensor(rng.standard_normal((2, 64, 3)))
    for alpha in alphas[:10]:
        assert gjs_mvn(mu[0], cov1, mu[1], cov2, alpha).min() >= -1e-12
        assert gjs_mvn(mu[0], cov1, mu[1], cov2, alpha, dual=True).min() >= -1e-12
    assert kl_mvn(mu[0], cov1, mu[1], cov2).min() > 0
