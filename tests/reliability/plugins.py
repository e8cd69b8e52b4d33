"""Faulty components plugged into train.py through Hydra, the way a new divergence or model is
added (one class + ``divergence._target_=...`` / ``model._target_=...``), to provoke faults."""

from __future__ import annotations

import os
import time

import torch
from torch import Tensor

from vae_gjs.divergences import KLqp, ValueAndParts
from vae_gjs.models import Burgess

#: Seconds :class:`SlowKLqp` sleeps per training step (read from the environment so that a slowed
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


class SlowKLqp(KLqp):
    """KL(q‖p) that sleeps ``$VAE_GJS_TEST_STEP_DELAY`` seconds per training step: same numbers,
    a run long enough to be killed in the middle without burning CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.delay = float(os.environ.get(DELAY_ENV, "0"))

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> ValueAndParts:
        if self.training and self.delay:
            time.sleep(self.delay)
        return super().value_and_parts(mu, logvar)


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
