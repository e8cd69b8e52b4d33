"""Lightning callbacks and plugins of a training run: last and best checkpoints (atomic),
resumable random state, per-epoch bookkeeping, the progress bar."""

from vae_gjs.callbacks.bookkeeping import EpochBookkeeping, ProgressBar, progress_bar
from vae_gjs.callbacks.checkpoint import LastAndBestCheckpoint
from vae_gjs.callbacks.checkpoint_io import AtomicCheckpointIO
from vae_gjs.callbacks.random_state import RandomState

__all__ = [
    "AtomicCheckpointIO",
    "EpochBookkeeping",
    "LastAndBestCheckpoint",
    "ProgressBar",
    "RandomState",
    "progress_bar",
]
