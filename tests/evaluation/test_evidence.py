"""Importance-sampled log p(x) against a linear-Gaussian VAE, where log p(x) is known exactly,
and the bootstrap interval on samples with a known standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.distributions import MultivariateNormal, Normal

from vae_gjs.evaluation.evidence import (
    bootstrap_ci,
    importance_log_px,
    importance_log_px_by_likelihood,
    log_standard_normal,
    model_evidence,
)

DTYPE = torch.float64


class LinearGaussian:
    """p(z) = N(0, I_d), p(x|z) = N(Wz + b, σ²I_D), so p(x) = N(b, WWᵀ + σ²I). W has orthogonal
    columns, so the exact posterior p(z|x) is a *diagonal* Gaussian, expressible as q(z|x)."""

    def __init__(
        self,
        seed: int = 0,
        data_dim: int = 6,
        scales: tuple[float, ...] = (2.0, 1.0, 0.5),
        sigma: float = 0.5,
    ):
        generator = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(data_dim, len(scales), generator=generator, dtype=DTYPE))
        self.scales = torch.tensor(scales, dtype=DTYPE)
        self.w = q * self.scales
        self.b = torch.randn(data_dim, generator=generator, dtype=DTYPE)
        self.sigma = sigma
        self.generator = generator

    def sample(self, n: int) -> Tensor:
        z = torch.randn(n, self.w.shape[1], generator=self.generator, dtype=DTYPE)
        return self.decode(z) + self.sigma * torch.randn(
            n, self.w.shape[0], generator=self.generator, dtype=DTYPE
        )

    def log_px(self, x: Tensor) -> Tensor:
        covariance = self.w @ self.w.T + self.sigma**2 * torch.eye(self.w.shape[0], dtype=DTYPE)
        return MultivariateNormal(self.b, covariance).log_prob(x)

    def decode(self, z: Tensor) -> Tensor:
        return z @ self.w.T + self.b

    def log_likelihood(self, mean: Tensor, x: Tensor) -> Tensor:
        return Normal(mean, self.sigma).log_prob(x).sum(-1)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The exact p(z|x) = N(S Wᵀ(x - b)/σ², S), S = (I + WᵀW/σ²)⁻¹ = diag(1/(1 + s²/σ²))."""
        variance = 1 / (1 + self.scales**2 / self.sigma**2)
        mean = variance * ((x - self.b) @ self.w) / self.sigma**2
        return mean, variance.log().expand_as(mean)

    def rough_proposal(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """A poorer q(z|x): the posterior shifted by half a standard deviation, variance × 2."""
        mean, logvar = self.posterior(x)
        return mean + 0.5 * torch.exp(0.5 * logvar), logvar + math.log(2.0)


def test_log_prior_density_matches_torch_distributions() -> None:
    z = torch.randn(5, 4, dtype=DTYPE)
    assert torch.allclose(log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


@pytest.mark.parametrize("k", [1, 7, 64])
def test_exact_posterior_as_proposal_gives_exact_log_px_for_every_k(k: int) -> None:
    model = LinearGaussian()
    x = model.sample(50)
    estimate = importance_log_px(x, model.posterior, model.decode, model.log_likelihood, k, torch.Generator())
    # every importance weight p(x, z)/p(z|x) equals p(x): no variance at all, whatever K
    assert torch.allclose(estimate.log_px, model.log_px(x), atol=1e-10, rtol=0)
    assert torch.allclose(estimate.elbo, model.log_px(x), atol=1e-10, rtol=0)


def test_estimate_converges_to_the_closed_form_as_k_grows() -> None:
    model = LinearGaussian(seed=1)
    x = model.sample(200)
    truth = model.log_px(x)
    errors = {}
    for k in (1, 10, 100, 1000):
        estimate = importance_log_px(
            x, model.rough_proposal, model.decode, model.log_likelihood, k, torch.Generator().manual_seed(k)
        )
        error = estimate.log_px - truth
        errors[k] = float(error.abs().mean())
        # Jensen: biased low (up to sampling noise); the ELBO (mean log-weight) lower still
        assert float(error.mean()) <= 3 * float(error.std()) / math.sqrt(len(x))
        assert float(estimate.elbo.mean()) <= float(estimate.log_px.mean())
    assert errors[1] > errors[10] > errors[100] > errors[1000]
    assert errors[1000] < 0.05  # mean |error| per image at K = 1000 (about 1.5 at K = 1)
    assert errors[1000] < errors[1] / 20


def test_chunked_decoding_equals_one_decode() -> None:
    model = LinearGaussian(seed=2)
    x = model.sample(30)
    calls = []

    def decode(z: Tensor) -> Tensor:
        calls.append(z.shape[0])
        return model.decode(z)

    whole = importance_log_px(
        x,
        model.rough_proposal,
        decode,
        model.log_likelihood,
        50,
        torch.Generator().manual_seed(0),
        max_decode=1500,
    )
    assert calls == [1500]  # every sample of the batch in one decode call (max_decode=1500)
    calls.clear()
    chunked = importance_log_px(
        x,
        model.rough_proposal,
        decode,
        model.log_likelihood,
        50,
        torch.Generator().manual_seed(0),
        max_decode=400,
    )
    assert calls == [390, 390, 390, 330]  # 13 samples × 30 images per call
    assert torch.allclose(whole.log_px, chunked.log_px, atol=1e-12)


def test_model_evidence_averages_per_batch_and_is_reproducible() -> None:
    model = LinearGaussian(seed=3)
    x = model.sample(25)
    batches = [(x[i : i + 10], torch.zeros(0)) for i in range(0, 25, 10)]  # 10, 10, 5

    def run(seed: int, n_batches: int) -> object:
        return model_evidence(
            model.rough_proposal,
            model.decode,
            {"gaussian": model.log_likelihood},
            iter(batches),
            16,
            n_batches,
            seed=seed,
        )["gaussian"]

    first, again = run(0, 3), run(0, 3)
    assert first == again
    assert run(1, 3).batch_log_px != first.batch_log_px
    assert first.n_images == 25 and len(first.batch_log_px) == 3
    expected = np.average(first.batch_log_px, weights=[10, 10, 5])
    assert first.image_mean_log_px == pytest.approx(expected)
    assert run(0, 2).n_images == 20


def test_bootstrap_interval_has_the_normal_theory_width() -> None:
    values = np.arange(100, dtype=np.float64)  # mean 49.5, standard error sqrt((100² - 1)/12)/10
    standard_error = math.sqrt((100**2 - 1) / 12) / 10
    ci = bootstrap_ci(values, resamples=1000, seed=0)
    assert ci.mean == 49.5
    assert ci.low < ci.mean < ci.high
    assert ci.high - ci.low == pytest.approx(2 * 1.959964 * standard_error, rel=0.1)
    assert ci.std_error == pytest.approx(standard_error, rel=0.1)
    assert ci.mean - ci.low == pytest.approx(ci.high - ci.mean, rel=0.25)  # symmetric sample, symmetric CI
    assert bootstrap_ci(values, 1000, seed=0) == ci
    assert bootstrap_ci(torch.tensor(values), 1000, seed=0) == ci


def test_bootstrap_of_a_constant_sample_has_zero_width() -> None:
    ci = bootstrap_ci([3.0] * 20, resamples=200)
    assert ci.low == ci.mean == ci.high == 3.0 and ci.std_error == 0.0


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        bootstrap_ci([], 10)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], 0)


def test_several_likelihoods_share_the_samples() -> None:
    """Each likelihood's estimate from one joint pass equals its estimate alone with the same seed."""
    model = LinearGaussian(seed=4)
    x = model.sample(12)

    def scaled(output: Tensor, target: Tensor) -> Tensor:  # another, different log-likelihood
        return 0.5 * model.log_likelihood(output, target) - 3.0

    likelihoods = {"a": model.log_likelihood, "b": scaled}
    joint = importance_log_px_by_likelihood(
        x, model.rough_proposal, model.decode, likelihoods, 32, torch.Generator().manual_seed(5)
    )
    for name, log_likelihood in likelihoods.items():
        alone = importance_log_px(
            x, model.rough_proposal, model.decode, log_likelihood, 32, torch.Generator().manual_seed(5)
        )
        assert torch.equal(joint[name].log_px, alone.log_px)
        assert torch.equal(joint[name].elbo, alone.elbo)
    assert not torch.allclose(joint["a"].log_px, joint["b"].log_px)
