"""Skew-geometric Jensen-Shannon regularisers JS^{Gα'} and JS*^{Gα'} against N(0, I) (Eqs. 16–17)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from vae_gjs.divergences.base import Divergence, ValueAndParts
from vae_gjs.divergences.gaussian import gjs_normal_terms, kl_normal_of_variances
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
        kl_q, kl_p = self._parts(mu, logvar, self.alpha)
        value = (1 - self.alpha) * kl_q + self.alpha * kl_p
        return value, dict(zip(self.part_names, (kl_q, kl_p), strict=True))

    def _parts(self, mu: Tensor, logvar: Tensor, alpha: float | Tensor) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros_like(mu)
        return gjs_normal_terms(mu, logvar, zeros, zeros, alpha, self.dual, self.prime)

    def stack_key(self) -> Hashable | None:
        """Fixed-α members of exactly one class (a subclass is evaluated on its own unless it
        declares its own key) and one intermediate share one call (:meth:`stacked`)."""
        if type(self) not in (GJS, DGJS) or self.learned():
            return None
        return type(self), self.prime

    @classmethod
    def stacked(cls, members: Sequence[Divergence], mu: Tensor, logvar: Tensor) -> Tensor:
        """Each member's own α broadcast over its rows: α and 1 - α are rounded to the input's
        dtype from the same Python floats as :meth:`value_and_parts` rounds them."""
        alphas = [member.alpha for member in members]

        def column(values: list[float]) -> Tensor:
            return torch.tensor(values, dtype=mu.dtype, device=mu.device).view(-1, 1)

        alpha = column(alphas)
        kl_q, kl_p = members[0]._parts(mu, logvar, alpha.unsqueeze(-1))
        return column([1 - a for a in alphas]) * kl_q + alpha * kl_p

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


class GJSReference(GJS):
    """JS^{Gα'} as the paper's authors' code computed it from 6cfd665 to ad5c2ca (2020-11-26,
    after Table 1's numbers were printed): the intermediate N_α' of
    q and N(0, I), then each KL with variances where its formula takes log-variances
    (:func:`~vae_gjs.divergences.gaussian.kl_normal_of_variances`). Not Eq. 17: it keeps
    N_α' but not the KL terms. Its limits are not Proposition 1's; where q's variances are
    small it barely penalises them (a variance of 0 reads as log-variance 0). ``prime=False``:
    the intermediate of the authors' first commit (f41fc46), Nielsen's ``N ∝ q^(1-α) p^α``,
    whose KLs took variances correctly: that commit's GJS is ``GJS(alpha, prime=False)``."""

    name = "gjs_reference"

    def _parts(self, mu: Tensor, logvar: Tensor, alpha: float | Tensor) -> tuple[Tensor, Tensor]:
        zeros = torch.zeros_like(mu)
        return gjs_normal_terms(
            mu, logvar, zeros, zeros, alpha, self.dual, self.prime, kl=kl_normal_of_variances
        )


class DGJSReference(GJSReference):
    """The dual JS*^{Gα'} as the authors' code computed it (:class:`GJSReference`'s KL terms in
    :class:`DGJS`'s order: ``(1-α) KL(N_α'‖q) + α KL(N_α'‖p)``)."""

    name = "dgjs_reference"
    dual = True
    part_names = DGJS.part_names
