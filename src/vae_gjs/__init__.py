"""vae-gjs: variational autoencoders with controllable latent divergences (Deasy et al., 2020).

``vae_gjs.open_run(run_dir)`` gives a trained model back from its run folder with its data, to
explore (reconstruct, sample, traverse, interpolate, log p(x)); ``vae_gjs.load_run(run_dir)``
gives the bare model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vae_gjs.evaluation.explore import TrainedRun
    from vae_gjs.module import VAE

__version__ = "0.1.0"


def load_run(run_dir: str | Path, checkpoint: str = "last") -> VAE:
    """The trained VAE of a run folder (``checkpoint``: ``last`` or ``best``), on the CPU in
    evaluation mode with gradients off: ``model.encode(x)``, ``model.decode(z)``,
    ``model.sample(n)``. Imports torch and Lightning on first call (``import vae_gjs`` stays light)."""
    from vae_gjs.evaluation.loading import load_run as load

    return load(run_dir, checkpoint)


def open_run(
    run_dir: str | Path, checkpoint: str = "last", data_dir: str | None = None, device: str = "cpu"
) -> TrainedRun:
    """A run folder's trained model with its data splits, to explore with tensors ready to plot:
    ``run.images("test", 8)``, ``run.reconstruct(x)``, ``run.sample(n)``, ``run.traverse(x, dims)``,
    ``run.interpolate(a, b)``, ``run.log_px(x, k)``, ``run.grid(images)``
    (:mod:`vae_gjs.evaluation.explore`). No gradients anywhere."""
    from vae_gjs.evaluation.explore import open_run as open_

    return open_(run_dir, checkpoint, data_dir, device)
