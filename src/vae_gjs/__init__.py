"""vae-gjs: variational autoencoders with controllable latent divergences (Deasy et al., 2020).

``vae_gjs.load_run(run_dir)`` gives a trained model back from its run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vae_gjs.module import VAE

__version__ = "0.1.0"


def load_run(run_dir: str | Path, checkpoint: str = "last") -> VAE:
    """The trained VAE of a run folder (``checkpoint``: ``last`` or ``best``), on the CPU in
    evaluation mode: ``model.encode(x)``, ``model.decode(z)``, ``model.sample(n)``. Imports torch
    and Lightning on first call (``import vae_gjs`` stays light)."""
    from vae_gjs.evaluation.loading import load_run as load

    return load(run_dir, checkpoint)
