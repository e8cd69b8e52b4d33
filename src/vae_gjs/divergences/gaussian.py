"""Closed-form divergences between Gaussians (Deasy et al., 2020, Eqs. 1–13 and 16–17).

Diagonal Gaussians are given by mean and **log-variance** tensors of shape ``[..., d]``; the result
is summed over the last dimension. Full-covariance Gaussians are given by mean ``[..., n]`` and
covariance ``[..., n, n]``. Everything broadcasts over leading (batch) dimensions and is
differentiable.

The skew-geometric Jensen-Shannon divergence compares both distributions with their normalised
weighted geometric mean ``N_w ∝ N1^(1-w) N2^w`` (Eqs. 12–13). Nielsen's original JS^{Gα} uses
``w = α``; the paper's variant JS^{Gα'} (Eq. 16) uses ``w = 1 - α``, which makes it interpolate
between KL(N1‖N2) at α = 0 and KL(N2‖N1) at α = 1 (Proposition 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Params = tuple[Tensor, Tensor]


class _WeightGradient(torch.autograd.Function):
    """``value`` unchanged, with ``∂value/∂w = derivative`` added to the backward pass of ``w``.

    The log-space geometric mean below differentiates ``log w`` and ``log(1 - w)``, which is
    ``0 · ∞ = NaN`` at w = 0 and w = 1 although the mean is linear in the precisions there
    (Eq. 12) and its derivative finite. So the log-space form takes ``w`` detached and this
    function supplies the exact first derivative; the forward value is bit-for-bit that of a
    fixed ``w``.
    """

    @staticmethod
    def forward(ctx: Any, value: Tensor, weight: Tensor, derivative: Tensor) -> Tensor:
        ctx.save_for_backward(derivative)
        ctx.weight_shape = weight.shape
        return value.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        (derivative,) = ctx.saved_tensors
        return grad, (grad * derivative).sum_to_size(ctx.weight_shape), None


def _log_weights(weight: Tensor) -> tuple[Tensor, Tensor]:
    """``log(1 - w)`` and ``log(w)`` of a detached weight (``-inf`` at the end points, which is
    exact for the value; the weight's gradient comes from :class:`_WeightGradient`)."""
    w = weight.detach()
    return torch.log1p(-w), torch.log(w)


def kl_normal_dims(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """The per-dimension terms ``[..., d]`` of :func:`kl_normal` (a diagonal KL is their sum):
    ``0.5 * [σ1²/σ2² - 1 - log(σ1²/σ2²) + (μ1 - μ2)²/σ2²]``, written with ``expm1`` so that
    nearly equal distributions do not lose precision to cancellation."""
    log_ratio = logvar1 - logvar2
    return 0.5 * (torch.expm1(log_ratio) - log_ratio + (mu1 - mu2).pow(2) * torch.exp(-logvar2))


def kl_normal(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N1 ‖ N2) for diagonal Gaussians, Eq. (2) with diagonal covariances: the sum over the
    last dimension of :func:`kl_normal_dims`. With N2 = N(0, I) this is Eq. (3); with
    N1 = N(0, I) it is Eq. (4).
    """
    return kl_normal_dims(mu1, logvar1, mu2, logvar2).sum(-1)


def geometric_mean_normal(
    mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor, weight: float | Tensor
) -> Params:
    """Mean and log-variance of ``N_w ∝ N1^(1-w) N2^w`` for diagonal Gaussians (Eqs. 12–13).

    The precision ``1/σ_w² = (1-w)/σ1² + w/σ2²`` is a log-sum-exp of log-weighted precisions, and
    the mean ``μ_w = σ_w² ((1-w) μ1/σ1² + w μ2/σ2²)`` is the softmax of the same logits applied
    to ``(μ1, μ2)``: no variance is ever exponentiated on its own, so it stays finite for
    log-variances far outside [-20, 20].

    A weight that requires grad (a learned α) gets its exact derivative, finite at w = 0 and
    w = 1: with ``r_i = σ_w²/σ_i²``, ``∂ log σ_w²/∂w = r_1 - r_2`` and
    ``∂μ_w/∂w = r_2 (μ2 - μ_w) - r_1 (μ1 - μ_w)`` (differentiating Eqs. 12–13).
    """
    w = torch.as_tensor(weight, dtype=mu1.dtype, device=mu1.device)
    log_1mw, log_w = _log_weights(w)
    logits = torch.stack(torch.broadcast_tensors(log_1mw - logvar1, log_w - logvar2))
    logvar = -torch.logsumexp(logits, dim=0)
    share = torch.softmax(logits, dim=0)
    mu = share[0] * mu1 + share[1] * mu2
    if w.requires_grad and torch.is_grad_enabled():
        with torch.no_grad():
            r1, r2 = torch.exp(logvar - logvar1), torch.exp(logvar - logvar2)
            d_mu = r2 * (mu2 - mu) - r1 * (mu1 - mu)
        mu = _WeightGradient.apply(mu, w, d_mu)
        logvar = _WeightGradient.apply(logvar, w, r1 - r2)
    return mu, logvar


def kl_mvn(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> Tensor:
    """KL(N1 ‖ N2) for full-covariance Gaussians, Eq. (2), via Cholesky factors.

    ``0.5 * [tr(Σ2⁻¹Σ1) + log(|Σ2|/|Σ1|) + (μ2-μ1)ᵀΣ2⁻¹(μ2-μ1) - n]``.
    """
    n = mu1.shape[-1]
    batch = torch.broadcast_shapes(mu1.shape[:-1], mu2.shape[:-1], cov1.shape[:-2], cov2.shape[:-2])
    chol1 = torch.linalg.cholesky(cov1).expand(*batch, n, n)
    chol2 = torch.linalg.cholesky(cov2).expand(*batch, n, n)
    trace = torch.linalg.solve_triangular(chol2, chol1, upper=False).pow(2).sum((-2, -1))
    diff = (mu2 - mu1).expand(*batch, n).unsqueeze(-1)
    mahalanobis = torch.linalg.solve_triangular(chol2, diff, upper=False).pow(2).sum((-2, -1))
    log_det_ratio = 2 * (
        torch.diagonal(chol2, dim1=-2, dim2=-1).log() - torch.diagonal(chol1, dim1=-2, dim2=-1).log()
    ).sum(-1)
    return 0.5 * (trace + log_det_ratio + mahalanobis - n)


def geometric_mean_mvn(
    mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor, weight: float | Tensor
) -> Params:
    """Mean and covariance of ``N_w ∝ N1^(1-w) N2^w``: Eq. (12), the matrix harmonic barycenter
    ``Σ_w = ((1-w)Σ1⁻¹ + wΣ2⁻¹)⁻¹``, and Eq. (13), ``μ_w = Σ_w((1-w)Σ1⁻¹μ1 + wΣ2⁻¹μ2)``."""
    w = torch.as_tensor(weight, dtype=mu1.dtype, device=mu1.device)
    prec1 = torch.cholesky_inverse(torch.linalg.cholesky(cov1))
    prec2 = torch.cholesky_inverse(torch.linalg.cholesky(cov2))
    prec_w = (1 - w) * prec1 + w * prec2
    chol_w = torch.linalg.cholesky(prec_w)
    cov_w = torch.cholesky_inverse(chol_w)
    eta = (1 - w) * (prec1 @ mu1.unsqueeze(-1)) + w * (prec2 @ mu2.unsqueeze(-1))
    mu_w = torch.cholesky_solve(eta, chol_w).squeeze(-1)
    return mu_w, cov_w


def _skew_geometric_terms(
    kl: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
    geometric_mean: Callable[[Tensor, Tensor, Tensor, Tensor, float | Tensor], Params],
    n1: Params,
    n2: Params,
    alpha: float | Tensor,
    dual: bool,
    prime: bool,
) -> tuple[Tensor, Tensor]:
    """The two KL terms of Eq. (8)/(17) (or of the dual, Eq. (10)), before weighting by (1-α, α)."""
    alpha = torch.as_tensor(alpha, dtype=n1[0].dtype, device=n1[0].device)
    mean = geometric_mean(*n1, *n2, 1 - alpha if prime else alpha)
    if dual:
        return kl(*mean, *n1), kl(*mean, *n2)
    return kl(*n1, *mean), kl(*n2, *mean)


def gjs_normal_terms(
    mu1: Tensor,
    logvar1: Tensor,
    mu2: Tensor,
    logvar2: Tensor,
    alpha: float | Tensor,
    dual: bool = False,
    prime: bool = True,
    kl: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor] = kl_normal,
) -> tuple[Tensor, Tensor]:
    """The two KL parts of :func:`gjs_normal`: ``(KL(N1‖N_m), KL(N2‖N_m))``, or for the dual
    ``(KL(N_m‖N1), KL(N_m‖N2))``, where ``N_m`` is the intermediate geometric mean. ``kl``: how
    each part is computed from two (mean, log-variance) pairs (:func:`kl_normal`; the authors'
    code's: :func:`kl_normal_of_variances`)."""
    return _skew_geometric_terms(
        kl, geometric_mean_normal, (mu1, logvar1), (mu2, logvar2), alpha, dual, prime
    )


#: The largest variance :func:`kl_normal_of_variances` passes on as a log-variance: the authors'
#: code overflows past about 88 (float32's exp); 50 keeps every term finite.
REFERENCE_VARIANCE_CAP = 50.0


def kl_normal_of_variances(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """The KL of the GJS terms as the paper's authors' code computed it (``jacobdeasy/geometric-js``,
    ``vae/models/losses.py``, ``_gjs_normal_loss`` from 6cfd665 to ad5c2ca, 2020-11-26; fixed at c263c59): the
    *variances* of both sides in the places of :func:`kl_normal`'s log-variances, i.e.
    ``KL(N(μ1, exp σ1²) ‖ N(μ2, exp σ2²))``. Not a divergence of the paper's equations; it is here
    to test where Table 1's JS rows come from (docs/reproduction.md). Variances above
    :data:`REFERENCE_VARIANCE_CAP` are capped (the authors' code gives inf there)."""
    cap = REFERENCE_VARIANCE_CAP
    return kl_normal(mu1, logvar1.exp().clamp(max=cap), mu2, logvar2.exp().clamp(max=cap))


def gjs_normal(
    mu1: Tensor,
    logvar1: Tensor,
    mu2: Tensor,
    logvar2: Tensor,
    alpha: float | Tensor,
    dual: bool = False,
    prime: bool = True,
) -> Tensor:
    """Skew-geometric Jensen-Shannon divergence between diagonal Gaussians, summed over the last dim.

    ``prime=True`` (default) is the paper's variant JS^{Gα'} (Eqs. 16–17): the intermediate is
    ``N_α' = N(μ_{1-α}, Σ_{1-α}) ∝ N1^α N2^(1-α)`` and

        JS^{Gα'}(N1‖N2)  = (1-α) KL(N1‖N_α') + α KL(N2‖N_α')      (Eq. 17)
        JS*^{Gα'}(N1‖N2) = (1-α) KL(N_α'‖N1) + α KL(N_α'‖N2)      (dual=True, Eq. 10 with N_α')

    so that α→0 gives KL(N1‖N2) and α→1 gives KL(N2‖N1), the dual the other way round
    (Proposition 1). ``prime=False`` uses Nielsen's intermediate ``N_α ∝ N1^(1-α) N2^α``
    (Eqs. 8–13), whose limits at α = 0 and 1 are both zero (Eqs. 14–15).
    """
    kl_1, kl_2 = gjs_normal_terms(mu1, logvar1, mu2, logvar2, alpha, dual, prime)
    return (1 - alpha) * kl_1 + alpha * kl_2


def gjs_mvn(
    mu1: Tensor,
    cov1: Tensor,
    mu2: Tensor,
    cov2: Tensor,
    alpha: float | Tensor,
    dual: bool = False,
    prime: bool = True,
) -> Tensor:
    """:func:`gjs_normal` for full-covariance Gaussians (Eqs. 8, 10, 12–13, 16–17)."""
    kl_1, kl_2 = _skew_geometric_terms(
        kl_mvn, geometric_mean_mvn, (mu1, cov1), (mu2, cov2), alpha, dual, prime
    )
    return (1 - alpha) * kl_1 + alpha * kl_2
