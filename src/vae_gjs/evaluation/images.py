"""Image grids of a model: reconstructions, samples from the prior, latent traversals (Fig. 4).

Images are the decoder means sigmoid(logits) in [0, 1]; grids are built with
``torchvision.utils.make_grid`` (2-pixel padding) and written as PNG atomically.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from vae_gjs.io import write_atomic

#: Images per grid row (and the number of traversal points per dimension, as in Fig. 4).
COLUMNS = 10
PADDING = 2


def decode_images(net: torch.nn.Module, z: Tensor) -> Tensor:
    """Decoder means ``sigmoid(decode(z))`` ``[N, C, H, W]`` in [0, 1]."""
    return torch.sigmoid(net.decode(z))


def grid(images: Tensor, columns: int = COLUMNS) -> Tensor:
    """A ``[3, H, W]`` grid of ``images`` with ``columns`` images per row."""
    return make_grid(images.detach().float().cpu().clamp(0, 1), nrow=columns, padding=PADDING, pad_value=1.0)


def save_png(picture: Tensor, path: Path) -> Path:
    """Write a ``[C, H, W]`` picture in [0, 1] as a PNG, atomically."""
    write_atomic(path, lambda handle: save_image(picture, handle, format="png"), binary=True)
    return path


@torch.inference_mode()
def reconstruction_grid(net: torch.nn.Module, x: Tensor, columns: int = COLUMNS) -> Tensor:
    """Rows of test images, each row directly above a row of their reconstructions (z = μ)."""
    mu, _ = net.encode(x)
    recon = decode_images(net, mu)
    rows = []
    for start in range(0, x.shape[0], columns):
        rows += [x[start : start + columns], recon[start : start + columns]]
    return grid(torch.cat(rows), columns)


@torch.inference_mode()
def samples_grid(
    net: torch.nn.Module, latent_dim: int, side: int = 10, generator: torch.Generator | None = None
) -> Tensor:
    """A ``side × side`` grid decoded from z ~ N(0, I) (noise drawn on the CPU from ``generator``)."""
    z = torch.randn((side * side, latent_dim), generator=generator)
    device = next(net.parameters()).device
    return grid(decode_images(net, z.to(device)), side)


def traversal_values(points: int = COLUMNS, extent: float = 3.0) -> Tensor:
    """``points`` equidistant values from ``-extent`` to ``extent`` (±3 covers 99.7% of the prior)."""
    return torch.linspace(-extent, extent, points)


@torch.inference_mode()
def traversal_grid(
    net: torch.nn.Module, x: Tensor, dims: list[int], points: int = COLUMNS, extent: float = 3.0
) -> Tensor:
    """Latent traversals of one image ``x [1, C, H, W]`` (Fig. 4): one row per dimension in
    ``dims`` (in that order); in row d, z_d takes ``points`` equidistant values in
    [-extent, extent] while the other dimensions stay at the image's μ."""
    mu, _ = net.encode(x)
    values = traversal_values(points, extent).to(mu)
    z = mu.repeat(len(dims) * points, 1).reshape(len(dims), points, -1)
    for row, dim in enumerate(dims):
        z[row, :, dim] = values
    return grid(decode_images(net, z.reshape(len(dims) * points, -1)), points)
