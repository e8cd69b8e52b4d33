"""KL between Gaussians: ``kl_normal`` and ``kl_mvn`` against Eqs. (1)-(4) computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from tests.divergences.divergence_reference import Gauss, eq2, mc_kl, random_spd
from vae_gjs.divergences import kl_mvn, kl_normal

F64 = torch.float64


def _diag_pairs(seed: int, batch: int = 64, d: int = 5, spread: float = 4.0):
    g = torch.Generator().manual_seed(seed)
    mu1 = 2 * torch.randn(batch, d, generator=g, dtype=F64)
    mu2 = 2 * torch.randn(batch, d, generator=g, dtype=F64)
    lv1 = torch.empty(batch, d, dtype=F64).uniform_(-spread, spread, generator=g)
    lv2 = torch.empty(batch, d, dtype=F64).uniform_(-spread, spread, generator=g)
    return mu1, lv1, mu2, lv2


def test_kl_normal_matches_torch_distributions_eq2():
    """Eq. (2) with diagonal covariances, independently: torch.distributions (float64) for both
    ``Normal`` (summed over coordinates) and ``MultivariateNormal`` with diag covariances."""
    mu1, lv1, mu2, lv2 = _diag_pairs(0)
    ours = kl_normal(mu1, lv1, mu2, lv2)
    by_normal = kl_divergence(Normal(mu1, (0.5 * lv1).exp()), Normal(mu2, (0.5 * lv2).exp())).sum(-1)
    by_mvn = kl_divergence(
        MultivariateNormal(mu1, torch.diag_embed(lv1.exp())),
        MultivariateNormal(mu2, torch.diag_embed(lv2.exp())),
    )
    assert ours.shape == (64,)
    torch.testing.assert_close(ours, by_normal, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, by_mvn, rtol=1e-9, atol=1e-10)
    # and Eq. (2) typed with explicit inverse / determinants (numpy), a few rows
    for i in range(4):
        ref = eq2(
            mu1[i].numpy(), np.diag(lv1[i].exp().numpy()), mu2[i].numpy(), np.diag(lv2[i].exp().numpy())
        )
        assert float(ours[i]) == pytest.approx(ref, rel=1e-10)


def test_kl_normal_against_prior_is_eq3_and_eq4():
    """Eq. (3) KL(N(μ, σ²)‖N(0, I)) and Eq. (4) KL(N(0, I)‖N(μ, σ²)), typed from the paper."""
    mu, lv, _, _ = _diag_pairs(1)
    zeros = torch.zeros_like(mu)
    var = lv.exp()
    eq3 = 0.5 * (var - var.log() + mu**2 - 1).sum(-1)
    eq4 = 0.5 * (1 / var + var.log() + mu**2 / var - 1).sum(-1)
    torch.testing.assert_close(kl_normal(mu, lv, zeros, zeros), eq3, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kl_normal(zeros, zeros, mu, lv), eq4, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(eq3, eq4)  # the two directions really differ on these inputs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_normal_monte_carlo_eq1(seed):
    """Eq. (1) by Monte Carlo: x ~ N1, mean of log n1(x) - log n2(x); within 5 standard errors."""
    mu1, lv1, mu2, lv2 = _diag_pairs(10 + seed, batch=1, d=4, spread=1.5)
    p1, p2 = Gauss.diag(mu1[0], lv1[0].exp()), Gauss.diag(mu2[0], lv2[0].exp())
    est, se = mc_kl(p1, p2, 40_000, torch.Generator().manual_seed(seed))
    value = float(kl_normal(mu1, lv1, mu2, lv2))
    assert se < 0.05 * (1 + value)  # the estimate is informative
    assert abs(est - value) < 5 * se, (est, se, value)


@pytest.mark.parametrize("delta", [1e-1, 1e-2, 1e-3])
def test_kl_normal_float32_keeps_precision_for_nearly_equal_distributions(delta):
    """log-variance parameterisation with expm1: KL(N(0, e^x)‖N(0, e^(x+δ))) = ½(e^(-δ) - 1 + δ)
    per coordinate, ~δ²/4, is computed in float32 to 1e-3 relative (a naive ``exp(r) - 1 - r``
    loses everything at δ = 1e-3)."""
    lv1 = torch.tensor([[0.3, -1.7, 2.2]], dtype=torch.float32)
    lv2 = lv1 + delta
    mu = torch.zeros_like(lv1)
    ours = kl_normal(mu, lv1, mu, lv2)
    r = (lv1.double() - lv2.double()).numpy()[0]  # the float32 inputs, exactly
    exact = 0.5 * sum(math.expm1(x) - x for x in r)
    assert float(ours) == pytest.approx(exact, rel=1e-3)


def test_kl_mvn_matches_torch_distributions_random_spd_batched():
    rng = np.random.default_rng(0)
    batch, n = 8, 4
    cov1 = torch.tensor(np.stack([random_spd(n, rng) for _ in range(batch)]))
    cov2 = torch.tensor(np.stack([random_spd(n, rng) for _ in range(batch)]))
    mu1 = torch.tensor(rng.standard_normal((batch, n)))
    mu2 = torch.tensor(rng.standard_normal((batch, n)))
    ours = kl_mvn(mu1, cov1, mu2, cov2)
    ref = kl_divergence(MultivariateNormal(mu1, cov1), MultivariateNormal(mu2, cov2))
    assert ours.shape == (batch,)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-10)
    for i in range(batch):
        assert float(ours[i]) == pytest.approx(
            eq2(mu1[i].numpy(), cov1[i].numpy(), mu2[i].numpy(), cov2[i].numpy()), rel=1e-9
        )
    # broadcasting: one shared covariance for the second argument
    shared = kl_mvn(mu1, cov1, mu2, cov2[0])
    ref_shared = kl_divergence(MultivariateNormal(mu1, cov1), MultivariateNormal(mu2, cov2[0]))
    torch.testing.assert_close(shared, ref_shared, rtol=1e-9, atol=1e-10)


def test_kl_mvn_with_diagonal_covariances_equals_kl_normal():
    mu1, lv1, mu2, lv2 = _diag_pairs(4, batch=16, d=3)
    full = kl_mvn(mu1, torch.diag_embed(lv1.exp()), mu2, torch.diag_embed(lv2.exp()))
    torch.testing.assert_close(full, kl_normal(mu1, lv1, mu2, lv2), rtol=1e-10, atol=1e-10)


def test_kl_mvn_monte_carlo_eq1():
    rng = np.random.default_rng(5)
    cov1, cov2 = random_spd(3, rng), random_spd(3, rng)
    mu1, mu2 = rng.standard_normal(3), rng.standard_normal(3)
    p1, p2 = Gauss(torch.tensor(mu1), torch.tensor(cov1)), Gauss(torch.tensor(mu2), torch.tensor(cov2))
    est, se = mc_kl(p1, p2, 40_000, torch.Generator().manual_seed(7))
    value = float(kl_mvn(p1.mean, p1.cov, p2.mean, p2.cov))
    assert se < 0.05 * (1 + value)
    assert abs(est - value) < 5 * se, (est, se, value)


def test_kl_is_zero_for_equal_and_positive_otherwise():
    mu1, lv1, mu2, lv2 = _diag_pairs(6, batch=512)
    assert torch.all(kl_normal(mu1, lv1, mu1, lv1) == 0)
    assert torch.all(kl_normal(mu1, lv1, mu2, lv2) > 0)
