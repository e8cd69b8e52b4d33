"""The regulariser interface: D(q(z|x) ‖ p(z)) with q = N(μ, diag σ²) and p = N(0, I)."""

from __future__ import annotations

from abc import ABC, abstractmethod
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

    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Per-sample divergence ``[B]``."""
        return self.value_and_parts(mu, logvar)[0]


def build_divergence(name: str, **kwargs: Any) -> Divergence:
    """The registered divergence ``name`` (``kl_qp``, ``kl_pq``, ``gjs``, ``dgjs``, ``mmd``,
    ``mmd_reference``) built with ``kwargs``, e.g. ``build_divergence("gjs", alpha=0.2)``."""
    check_choice("divergence", name, Divergence.registry)
    return Divergence.registry[name](**kwargs)
