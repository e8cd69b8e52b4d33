"""Skew-geometric Jensen-Shannon regularisers JS^{Gα'} and JS*^{Gα'} against N(0, I) (Eqs. 16–17)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from vae_gjs.divergences.base import Divergence, ValueAndParts
from vae_gjs.divergences.gaussian import gjs_normal_terms
from vae_gjs.errors import check_in_unit_interval


class GJS(Divergence):
    """JS^{Gα'}(q ‖ p) = (1-α) KL(q‖N_α') + α KL(p‖N_α'), where N_α' ∝ q^α p^(1-α) (Eq. 17).

    α = 0 gives KL(q‖p), α = 1 gives KL(p‖q) (Proposition 1). ``prime=False`` switches to
    Nielsen's original intermediate (not used in the paper's results). Its dual is :class:`DGJS`.

    ``learn_alpha=True`` makes α one scalar ``nn.Parameter`` started at ``alpha`` (the authors'
    α-VAE follow-up, docs/learned_alpha.md): it is trained by the gradient of λ·D, clamped to
    [0, 1] after every optimiser step (:meth:`project_`) and saved in the state dict, so a
    checkpoint carries the learned value.
    """

    name = "gjs"
    #: Which skew-geometric divergence: JS^{Gα'} (``False``) or the dual JS*^{Gα'} (``True``).
    dual: ClassVar[bool] = False
    #: Names of the two unweighted KL parts (KL(q‖N_α'), KL(p‖N_α')).
    part_names: ClassVar[tuple[str, str]] = ("kl_q_m", "kl_p_m")

    def __init__(self, alpha: float, prime: bool = True, learn_alpha: bool = False) -> None:
        super().__init__()
        start = check_in_unit_interval("alpha", alpha)
        self.alpha: float | nn.Parameter = nn.Parameter(torch.tensor(start)) if learn_alpha else start
        self.prime = prime

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        """The divergence and its two unweighted KL parts, ``(1-α)·part_1 + α·part_2``."""
        zeros = torch.zeros_like(mu)
        kl_q, kl_p = gjs_normal_terms(mu, logvar, zeros, zeros, self.alpha, self.dual, self.prime)
        value = (1 - self.alpha) * kl_q + self.alpha * kl_p
        return value, dict(zip(self.part_names, (kl_q, kl_p), strict=True))

    def learned(self) -> dict[str, Tensor]:
        return {"alpha": self.alpha.detach()} if isinstance(self.alpha, nn.Parameter) else {}

    def project_(self) -> None:
        """Clamp a learned α to [0, 1] (the authors' projection after each step)."""
        if isinstance(self.alpha, nn.Parameter):
            with torch.no_grad():
                self.alpha.clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        alpha = self.alpha.item() if isinstance(self.alpha, nn.Parameter) else self.alpha
        return f"alpha={alpha:g}, prime={self.prime}, learn_alpha={bool(self.learned())}"


class DGJS(GJS):
    """The dual JS*^{Gα'}(q ‖ p) = (1-α) KL(N_α'‖q) + α KL(N_α'‖p) (Eq. 10 with the intermediate
    N_α' of Eq. 16): α = 0 gives KL(p‖q), α = 1 gives KL(q‖p). Parts ``kl_m_q``, ``kl_m_p``."""

    name = "dgjs"
    dual = True
    part_names = ("kl_m_q", "kl_m_p")
