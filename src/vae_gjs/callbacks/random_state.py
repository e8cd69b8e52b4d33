"""Random number generator states saved in checkpoints and restored on resume."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class RandomState(Callback):
    """Keeps the random number generators (torch CPU and CUDA, NumPy, Python) in every checkpoint
    and restores them when training resumes from one.

    Lightning restores weights, optimiser and loop counters but not the RNGs, so a resumed run
    would draw different reparameterisation noise than the uninterrupted run. With the states
    saved at the end of an epoch (last.ckpt) and put back just before the next epoch starts,
    a killed-and-resumed run continues bit-identically on CPU (shuffling is seeded by
    ``(seed, epoch)`` separately). Under DDP the states of rank 0 are saved. The states are
    plain tensors and numbers, so ``torch.load(weights_only=True)`` still reads the checkpoint.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict  # applied at on_train_start, after everything set-up draws

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._pending = self._pending, None
        if not state:
            return
        torch.set_rng_state(state["torch"])
        if torch.cuda.is_available():  # as many devices as both runs have
            for device, cuda_state in enumerate(state.get("cuda", [])[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
