"""The regulariser interface: D(q(z|x) ‖ p(z)) with q = N(μ, diag σ²) and p = N(0, I)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from vae_gjs.errors import check_choice

#: A divergence's per-sample value ``[B]`` and its named per-sample parts (each ``[B]``).
ValueAndParts = tuple[Tensor, dict[str, Tensor]]


class Divergence(nn.Module, ABC):
    """A latent regulariser. :meth:`value_and_parts` takes ``[B, d]`` tensors and returns the
    per-sample divergence ``[B]`` with its named parts (for logging and evaluation), computed
    once; ``forward`` returns the value alone. The VAE averages it over the batch and weights
    it by λ.

    Subclasses implement :meth:`value_and_parts`; those that set ``name`` are registered for
    :func:`build_divergence`, and Hydra configs instantiate any subclass through ``_target_``.
    A fused sweep (docs/fused.md) evaluates the members it can in one call: a subclass opts in
    with :meth:`stack_key`, and :meth:`stacked` if its options differ between members.
    """

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Divergence]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # its own name, not one inherited from a registered parent
            Divergence.registry[cls.name] = cls

    @abstractmethod
    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        """Per-sample divergence ``[B]`` and its named per-sample parts (``{}`` when it has none)."""

    def learned(self) -> dict[str, Tensor]:
        """The divergence's trained scalars by name (e.g. ``{"alpha": α}``), logged every epoch
        as ``train/<name>`` and recorded in results.json and eval.json; ``{}`` when it has none."""
        return {}

    def project_(self) -> None:
        """Put trained parameters back into their domain; called after every optimiser step
        (nothing to do for a divergence without constraints)."""

    def stack_key(self) -> Hashable | None:
        """Members of a fused sweep whose divergences have equal keys are evaluated together, by
        one :meth:`stacked` call of their class. ``None`` (the default) evaluates this one on its
        own, inside its member's random stream: right for any divergence, and required for one
        that draws random numbers (MMD). A key promises that :meth:`value_and_parts` draws none
        and that two divergences with equal keys differ at most in what :meth:`stacked` reads."""
        return None

    @classmethod
    def stacked(cls, members: Sequence[Divergence], mu: Tensor, logvar: Tensor) -> Tensor:
        """Per-sample values ``[N, B]`` of ``members`` (equal :meth:`stack_key`) on stacked inputs
        ``[N, B, d]``: row n is ``members[n](mu[n], logvar[n])``, computed by the same elementwise
        operations. The default suits a divergence without options whose closed form broadcasts
        over leading dimensions (each KL): one call of the first member."""
        return members[0](mu, logvar)

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Per-sample divergence ``[B]``."""
        return self.value_and_parts(mu, logvar)[0]


def build_divergence(name: str, **kwargs: Any) -> Divergence:
    """The registered divergence ``name`` (``kl_qp``, ``kl_pq``, ``gjs``, ``dgjs``, ``mmd``,
    ``mmd_reference``) built with ``kwargs``, e.g. ``build_divergence("gjs", alpha=0.2)``."""
    check_choice("divergence", name, Divergence.registry)
    return Divergence.registry[name](**kwargs)
