"""Figure 4 of the paper: one model's panel of latent traversals of its most informative dimensions.

The ``n_dims`` latent dimensions with the highest mean test KL(q‖p) are traversed: z_d takes 10
equidistant values in [-extent, extent] while the other dimensions stay at the μ of one test
image; below, 10 test images and their reconstructions (z = μ). Which models a figure shows is
the report's choice (:func:`vae_gjs.reports.figure4_runs`), the drawing
:func:`vae_gjs.reports.figure4`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from vae_gjs.evaluation.images import COLUMNS, decode_images, traversal_values
from vae_gjs.evaluation.loading import build_datamodule, load_module
from vae_gjs.rundir import RunDir, load_run_config


@dataclass(frozen=True)
class Panel:
    """One model's part of Figure 4: ``traversals [n_dims·10, C, H, W]`` (row r traverses
    ``dims[r]``, whose mean test KL is ``kls[r]``), then ``images`` and ``reconstructions``
    ``[10, C, H, W]``, all in [0, 1]."""

    label: str
    dims: list[int]
    kls: list[float]
    traversals: Tensor
    images: Tensor
    reconstructions: Tensor


@torch.inference_mode()
def model_panel(
    label: str,
    path: Path,
    data_dir: str,
    kl_per_dim: list[float],
    n_dims: int = 5,
    image_index: int = 0,
    extent: float = 3.0,
    device: torch.device | str = "cpu",
) -> Panel:
    """Figure 4's panel of the run folder ``path`` (its last checkpoint); ``kl_per_dim`` is its
    mean test KL(q‖p) per dimension (eval.json)."""
    run = RunDir.at(path)
    run_cfg = load_run_config(run)
    datamodule = build_datamodule(run_cfg, data_dir)
    module, _ = load_module(run, run_cfg, "last", datamodule.image_shape)
    net = module.net.to(device)
    dims = sorted(range(len(kl_per_dim)), key=lambda d: -kl_per_dim[d])[:n_dims]
    images = datamodule.splits["test"].images.batch(torch.arange(COLUMNS)).to(device)
    mu, _ = net.encode(images)
    z = mu[image_index].repeat(len(dims) * COLUMNS, 1).reshape(len(dims), COLUMNS, -1)
    for row, dim in enumerate(dims):
        z[row, :, dim] = traversal_values(COLUMNS, extent).to(mu)
    return Panel(
        label=label,
        dims=dims,
        kls=[kl_per_dim[d] for d in dims],
        traversals=decode_images(net, z.reshape(len(dims) * COLUMNS, -1)).cpu(),
        images=images.cpu(),
        reconstructions=decode_images(net, mu).cpu(),
    )
