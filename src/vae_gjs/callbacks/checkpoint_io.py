"""Checkpoints written atomically (a Lightning ``CheckpointIO`` plugin)."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vae_gjs.io import atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file in the checkpoint's own folder, then rename: a kill
    mid-save leaves the previous checkpoint intact (Lightning's default writes through a
    temporary file in /tmp and *copies* it across devices, which is not atomic)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_open(path, "wb") as handle:
            torch.save(checkpoint, handle)
