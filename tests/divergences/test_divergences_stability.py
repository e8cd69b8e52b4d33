"""Finite values and finite autograd gradients in float32 (what training uses) at extreme inputs:
log-variances in [-20, 20] and |μ| up to 1e3, for every regulariser module and the closed forms."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch

from vae_gjs.divergences import (
    DGJS,
    GJS,
    MMD,
    KLpq,
    KLqp,
    MMDReference,
    gjs_mvn,
    gjs_normal,
    kl_mvn,
    kl_normal,
)

MUS = [-1e3, -1.0, 0.0, 1e-3, 1.0, 1e3]
LOGVARS = [-20.0, -10.0, -1.0, 0.0, 1.0, 10.0, 20.0]
ALPHAS = [0.0, 1e-6, 0.3, 0.5, 1 - 1e-6, 1.0]


def _q_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """[42, 2]: every (μ, log σ²) combination in the first coordinate, the reversed order in the
    second (so rows mix extremes across coordinates)."""
    rows = list(itertools.product(MUS, LOGVARS))
    mu = torch.tensor([[a[0], b[0]] for a, b in zip(rows, reversed(rows), strict=True)])
    logvar = torch.tensor([[a[1], b[1]] for a, b in zip(rows, reversed(rows), strict=True)])
    return mu, logvar


def _assert_finite_with_grads(fn, *inputs: torch.Tensor) -> torch.Tensor:
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    out = fn(*leaves)
    assert torch.isfinite(out).all(), out
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    for g in grads:
        assert g is None or torch.isfinite(g).all(), g
    return out


MODULES = (
    [KLqp(), KLpq(), MMD("imq"), MMD("rbf"), MMD("imq", biased=True), MMDReference()]
    + [cls(a, prime=p) for a, cls, p in itertools.product(ALPHAS, [GJS, DGJS], [False, True])]
    + [DGJS(0.5)]
)


@pytest.mark.parametrize("module", MODULES, ids=repr)
def test_regulariser_modules_finite_values_and_gradients_float32(module):
    torch.manual_seed(0)
    mu, logvar = _q_grid()
    assert mu.dtype == torch.float32
    out = _assert_finite_with_grads(module, mu, logvar)
    assert out.shape == (mu.shape[0],)
    assert out.min() >= 0 or isinstance(module, MMD)  # the unbiased MMD² may dip below 0


def _pair_grid() -> list[torch.Tensor]:
    """[1764, 1] each: every combination of (μ1, log σ1², μ2, log σ2²) from the grids."""
    rows = list(itertools.product(MUS, LOGVARS, MUS, LOGVARS))
    return [torch.tensor([[r[i]] for r in rows]) for i in range(4)]


@pytest.mark.parametrize(("dual", "prime"), list(itertools.product([False, True], [False, True])))
def test_closed_forms_general_pairs_finite_values_and_gradients_float32(dual, prime):
    pairs = _pair_grid()
    _assert_finite_with_grads(kl_normal, *pairs)
    for alpha in ALPHAS:
        out = _assert_finite_with_grads(partial(gjs_normal, alpha=alpha, dual=dual, prime=prime), *pairs)
        assert out.min() >= 0


def test_closed_forms_against_the_prior_float32():
    """N1 = q on the grid and N2 = N(0, I) exactly, through the functional API as well."""
    mu, logvar = _q_grid()
    zeros = torch.zeros_like(mu)
    for alpha, dual, prime in itertools.product(ALPHAS, [False, True], [False, True]):
        kw = {"alpha": alpha, "dual": dual, "prime": prime}
        _assert_finite_with_grads(lambda m, lv, kw=kw: gjs_normal(m, lv, zeros, zeros, **kw), mu, logvar)
        _assert_finite_with_grads(lambda m, lv, kw=kw: gjs_normal(zeros, zeros, m, lv, **kw), mu, logvar)


def test_full_covariance_forms_with_extreme_diagonal_covariances_float32():
    """kl_mvn / gjs_mvn in float32 with covariances diag(e^λ), λ ∈ {-20, 0, 20}, |μ| ≤ 1e3."""
    rows = list(itertools.product([-1e3, 0.0, 1e3], [-20.0, 0.0, 20.0], [-1e3, 0.0, 1e3], [-20.0, 0.0, 20.0]))
    mu1 = torch.tensor([[r[0], -r[0]] for r in rows])
    cov1 = torch.diag_embed(torch.tensor([[r[1], -r[1]] for r in rows]).exp())
    mu2 = torch.tensor([[r[2], r[0]] for r in rows])
    cov2 = torch.diag_embed(torch.tensor([[r[3], r[1]] for r in rows]).exp())
    _assert_finite_with_grads(kl_mvn, mu1, cov1, mu2, cov2)
    for alpha, dual in itertools.product([0.0, 0.3, 1.0], [False, True]):
        _assert_finite_with_grads(partial(gjs_mvn, alpha=alpha, dual=dual), mu1, cov1, mu2, cov2)
