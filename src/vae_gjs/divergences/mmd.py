"""Maximum mean discrepancy (Gretton et al., 2012) between two samples, with RBF and IMQ kernels."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from vae_gjs.divergences.base import Divergence, ValueAndParts
from vae_gjs.errors import check_choice, check_positive_int, check_positive_real

Kernel = Callable[[Tensor, Tensor], Tensor]


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """``‖x_i - y_j‖²`` for ``x: [n, d]``, ``y: [m, d]`` -> ``[n, m]`` (exact differences, no
    ``‖x‖² + ‖y‖² - 2xᵀy`` cancellation)."""
    return (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)


def rbf_kernel(scale: float) -> Kernel:
    """``k(x, y) = exp(-‖x - y‖² / scale)``."""
    return lambda x, y: torch.exp(-squared_distances(x, y) / scale)


def imq_kernel(scale: float) -> Kernel:
    """Inverse multiquadratic ``k(x, y) = scale / (scale + ‖x - y‖²)`` (Tolstikhin et al., WAE)."""
    return lambda x, y: scale / (scale + squared_distances(x, y))


def mmd2(x: Tensor, y: Tensor, kernel: Kernel, biased: bool = False) -> Tensor:
    """Squared MMD between samples ``x: [n, d]`` and ``y: [m, d]``.

    ``biased=False``: the unbiased U-statistic (diagonal terms of k(x, x) and k(y, y) left out;
    needs n, m ≥ 2). ``biased=True``: the V-statistic ``mean k(x,x) + mean k(y,y) - 2 mean k(x,y)``.
    """
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    if biased:
        return k_xx.mean() + k_yy.mean() - 2 * k_xy.mean()
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples on each side, got {n} and {m}")
    off_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    off_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return off_xx + off_yy - 2 * k_xy.mean()


class MMD(Divergence):
    """InfoVAE-style MMD² between z ~ q(z|x) (one reparameterised draw per row) and as many
    draws from p(z) = N(0, I) (Zhao et al., 2019).

    ``kernel`` is ``"imq"`` or ``"rbf"``; ``scale`` defaults to ``2·d`` (the WAE choice for a unit
    Gaussian prior). MMD is a property of the batch, so every row gets the batch value: the
    mean over the batch is the MMD² estimate.
    """

    name = "mmd"
    kernels: ClassVar[dict[str, Callable[[float], Kernel]]] = {"imq": imq_kernel, "rbf": rbf_kernel}

    def __init__(self, kernel: str = "imq", scale: float | None = None, biased: bool = False) -> None:
        super().__init__()
        self.kernel = check_choice("divergence.kernel", kernel, self.kernels)
        self.scale = None if scale is None else check_positive_real("divergence.scale", scale)
        self.biased = biased

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        prior = torch.randn_like(z)
        scale = self.scale if self.scale is not None else 2.0 * mu.shape[-1]
        # The U-statistic needs two rows; a lone row (a last batch of one) gets the V-statistic.
        biased = self.biased or mu.shape[0] < 2
        value = mmd2(z, prior, self.kernels[self.kernel](scale), biased=biased)
        return value.expand(mu.shape[0]), {}


class MMDReference(Divergence):
    """The MMD regulariser of the paper's authors' code: an RBF kernel
    ``exp(-‖x - y‖² / (2d)²)`` between ``cat(μ, log σ²)`` (width 2d) and ``n_prior`` draws of
    N(0, I_{2d}), biased V-statistic. It compares encoder *parameters* with prior samples (not
    samples of q), exactly as run for Table 1's MMD row; every row gets the batch value.
    """

    name = "mmd_reference"

    def __init__(self, n_prior: int = 200) -> None:
        super().__init__()
        self.n_prior = check_positive_int("divergence.n_prior", n_prior)

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        params = torch.cat([mu, logvar], dim=-1)
        prior = torch.randn(self.n_prior, params.shape[-1], dtype=mu.dtype, device=mu.device)
        value = mmd2(prior, params, rbf_kernel(float(params.shape[-1]) ** 2), biased=True)
        return value.expand(mu.shape[0]), {}
