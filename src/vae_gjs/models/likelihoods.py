"""Decoder likelihoods p(x|z): the reconstruction loss and the normalised log-density.

Both take decoder logits ``[B, C, H, W]`` and images in [0, 1]; both return one value per image.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from vae_gjs.errors import check_choice


class Likelihood(ABC):
    """A pixel-wise decoder likelihood."""

    name: ClassVar[str]

    @abstractmethod
    def loss(self, logits: Tensor, x: Tensor) -> Tensor:
        """Reconstruction loss per image ``[B]`` (what training minimises)."""

    @abstractmethod
    def log_prob(self, logits: Tensor, x: Tensor) -> Tensor:
        """``log p(x|z)`` per image ``[B]`` (for the model evidence)."""


def sse(logits: Tensor, x: Tensor) -> Tensor:
    """Sum of squared errors of the decoder mean ``sigmoid(logits)`` per image ``[B]``: Table 1's
    reconstruction error, whatever the likelihood a model was trained with."""
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)


class Gaussian(Likelihood):
    """:func:`sse` per image — the metric of Table 1 — which is ``-log N(x; sigmoid(logits), σ²I)``
    up to a constant for σ² = 1/2."""

    name = "gaussian"
    variance = 0.5

    def loss(self, logits: Tensor, x: Tensor) -> Tensor:
        return sse(logits, x)

    def log_prob(self, logits: Tensor, x: Tensor) -> Tensor:
        pixels = x[0].numel()
        return -self.loss(logits, x) / (2 * self.variance) - 0.5 * pixels * math.log(
            2 * math.pi * self.variance
        )


class Bernoulli(Likelihood):
    """Binary cross-entropy summed per image (computed from logits, numerically stable)."""

    name = "bernoulli"

    def loss(self, logits: Tensor, x: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    def log_prob(self, logits: Tensor, x: Tensor) -> Tensor:
        return -self.loss(logits, x)


#: The class of each likelihood name (the names: :data:`vae_gjs.config.names.LIKELIHOODS`).
LIKELIHOOD_CLASSES: dict[str, type[Likelihood]] = {cls.name: cls for cls in (Gaussian, Bernoulli)}


def build_likelihood(name: str) -> Likelihood:
    """``gaussian`` or ``bernoulli``."""
    return LIKELIHOOD_CLASSES[check_choice("likelihood", name, LIKELIHOOD_CLASSES)]()
