"""Skew-geometric Jensen-Shannon regularisers JS^{Gα'} and JS*^{Gα'} against N(0, I) (Eqs. 16–17)."""

from __future__ import annotations

import torch
from torch import Tensor

from vae_gjs.divergences.base import Divergence
from vae_gjs.divergences.gaussian import gjs_normal_terms
from vae_gjs.errors import check_in_unit_interval


class GJS(Divergence):
    """JS^{Gα'}(q ‖ p) = (1-α) KL(q‖N_α') + α KL(p‖N_α'), or with ``dual=True`` the dual
    JS*^{Gα'}(q ‖ p) = (1-α) KL(N_α'‖q) + α KL(N_α'‖p), where N_α' ∝ q^α p^(1-α).

    α = 0 gives KL(q‖p) (JS^{Gα'}) or KL(p‖q) (dual); α = 1 the other direction (Proposition 1).
    ``prime=False`` switches to Nielsen's original intermediate (not used in the paper's results).
    """

    name = "gjs"

    def __init__(self, alpha: float, dual: bool = False, prime: bool = True) -> None:
        super().__init__()
        self.alpha = check_in_unit_interval("alpha", alpha)
        self.dual = dual
        self.prime = prime

    def _kl_parts(self, mu: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros_like(mu)
        return gjs_normal_terms(mu, logvar, zeros, zeros, self.alpha, self.dual, self.prime)

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        kl_q, kl_p = self._kl_parts(mu, logvar)
        return (1 - self.alpha) * kl_q + self.alpha * kl_p

    def terms(self, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        """The two unweighted KL parts: ``kl_q_m``/``kl_p_m`` (KL(q‖N_α'), KL(p‖N_α')), or for the
        dual ``kl_m_q``/``kl_m_p`` (KL(N_α'‖q), KL(N_α'‖p))."""
        kl_q, kl_p = self._kl_parts(mu, logvar)
        if self.dual:
            return {"kl_m_q": kl_q, "kl_m_p": kl_p}
        return {"kl_q_m": kl_q, "kl_p_m": kl_p}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, dual={self.dual}, prime={self.prime}"


class DGJS(GJS):
    """The dual JS*^{Gα'} (Eq. 10 with the intermediate N_α' of Eq. 16)."""

    name = "dgjs"

    def __init__(self, alpha: float, prime: bool = True) -> None:
        super().__init__(alpha, dual=True, prime=prime)
