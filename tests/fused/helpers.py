"""Test doubles for the fused engine."""

from __future__ import annotations

import torch
from torch import Tensor

from vae_gjs.divergences import KLqp
from vae_gjs.divergences.base import ValueAndParts


class NaNAt(KLqp):
    """KL(q‖p), except that its ``at``-th training call (counting from 0) returns NaN (never if
    ``at < 0``): a member whose loss goes non-finite at a known step."""

    def __init__(self, at: int = -1) -> None:
        super().__init__()
        self.at = at
        self.calls = 0

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        value, parts = super().value_and_parts(mu, logvar)
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls - 1 == self.at:
                return value * torch.nan, parts
        return value, parts
