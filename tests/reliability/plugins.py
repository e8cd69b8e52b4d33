"""Faulty components plugged into train.py through Hydra, the way a new divergence or model is
added (one class + ``divergence._target_=...`` / ``model._target_=...``), to provoke faults."""

from __future__ import annotations

import os
import time

import torch
from torch import Tensor

from vae_gjs.divergences import GJS, KLqp, ValueAndParts
from vae_gjs.models import Burgess

#: Seconds :class:`_Slowed` divergences sleep per training step (read from the environment so that a slowed
#: run and a normal one have the same config).
DELAY_ENV = "VAE_GJS_TEST_STEP_DELAY"


class NaNAfterKLqp(KLqp):
    """KL(q‖p) that turns NaN from training step ``after`` on (steps counted from 0)."""

    def __init__(self, after: int = 0) -> None:
        super().__init__()
        self.after = after
        self.calls = 0

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        out, parts = super().value_and_parts(mu, logvar)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                return out * float("nan"), parts
        return out, parts


class _Slowed:
    """Sleeps ``$VAE_GJS_TEST_STEP_DELAY`` seconds per training step before the divergence it is
    mixed into: same numbers, a run long enough to be killed in the middle without burning CPU."""

    training: bool

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        delay = float(os.environ.get(DELAY_ENV, "0"))
        if self.training and delay:
            time.sleep(delay)
        return super().value_and_parts(mu, logvar)  # type: ignore[misc]


class SlowKLqp(_Slowed, KLqp):
    """KL(q‖p), slowed (:class:`_Slowed`)."""


class SlowGJS(_Slowed, GJS):
    """JS^{Gα}, slowed (:class:`_Slowed`): for searches over α."""


class NaNDecoderBurgess(Burgess):
    """The Burgess autoencoder whose decoder outputs NaN from training step ``nan_after`` on."""

    def __init__(self, *args: object, nan_after: int = 0, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.nan_after = nan_after
        self.calls = 0

    def decode(self, z: Tensor) -> Tensor:
        logits = super().decode(z)
        if self.training:
            self.calls += 1
            if self.calls > self.nan_after:
                return torch.full_like(logits, float("nan"))
        return logits
