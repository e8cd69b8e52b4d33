"""KL regularisers of the standard VAE (Eq. 3) and its forward-KL counterpart (Eq. 4)."""

from __future__ import annotations

import torch
from torch import Tensor

from vae_gjs.divergences.base import Divergence, ValueAndParts
from vae_gjs.divergences.gaussian import kl_normal


class KLqp(Divergence):
    """KL(q(z|x) ‖ p(z)) = ½ Σ (σ² - log σ² + μ² - 1), Eq. (3): the standard (β-)VAE term."""

    name = "kl_qp"

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        zeros = torch.zeros_like(mu)
        return kl_normal(mu, logvar, zeros, zeros), {}


class KLpq(Divergence):
    """KL(p(z) ‖ q(z|x)) = ½ Σ (σ⁻² + log σ² + μ²/σ² - 1), Eq. (4)."""

    name = "kl_pq"

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        zeros = torch.zeros_like(mu)
        return kl_normal(zeros, zeros, mu, logvar), {}
