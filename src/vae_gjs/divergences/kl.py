"""KL regularisers of the standard VAE (Eq. 3) and its forward-KL counterpart (Eq. 4)."""

from __future__ import annotations

from collections.abc import Hashable

import torch
from torch import Tensor

from vae_gjs.divergences.base import Divergence, ValueAndParts
from vae_gjs.divergences.gaussian import kl_normal


class KLqp(Divergence):
    """KL(q(z|x) ‖ p(z)) = ½ Σ (σ² - log σ² + μ² - 1), Eq. (3): the standard (β-)VAE term."""

    name = "kl_qp"

    def stack_key(self) -> Hashable | None:
        """No options and no random numbers: fused members of exactly this class share one call
        (a subclass may change the value or add options: it is evaluated on its own unless it
        declares its own key)."""
        return type(self) if type(self) in (KLqp, KLpq) else None

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        zeros = torch.zeros_like(mu)
        return kl_normal(mu, logvar, zeros, zeros), {}


class KLpq(Divergence):
    """KL(p(z) ‖ q(z|x)) = ½ Σ (σ⁻² + log σ² + μ²/σ² - 1), Eq. (4)."""

    name = "kl_pq"
    stack_key = KLqp.stack_key

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        zeros = torch.zeros_like(mu)
        return kl_normal(zeros, zeros, mu, logvar), {}
