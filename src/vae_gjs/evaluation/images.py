"""Image grids of a model: reconstructions, samples from the prior, latent traversals (Fig. 4).

Images are the decoder means sigmoid(logits) in [0, 1]; grids are built with
``torchvision.utils.make_grid`` (2-pixel padding) and written as PNG atomically. Traversal rows
are labelled ``z<d>  KL <value>`` with their dimension's KL(q‖p),

    KL_d = mean over images of ½ (μ_d² + σ_d² − 1 − log σ_d²),

(the per-dimension term of Eq. 3), and ordered by it, most used dimension first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid, save_image

from vae_gjs.io import write_atomic

#: Images per grid row (and the number of traversal points per dimension, as in Fig. 4).
COLUMNS = 10
PADDING = 2
#: Pixels of the white margin that holds a traversal row's label.
LABEL_WIDTH = 90


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


def kl_per_dimension(net: torch.nn.Module, x: Tensor) -> list[float]:
    """KL(q(z_d|x) ‖ N(0, 1)) of each latent dimension d, averaged over the images ``x``."""
    mu, logvar = net.encode(x)
    return (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0).tolist()


def traversal_labels(dims: list[int], kl: list[float]) -> list[str]:
    """The labels of traversal rows ``dims``: ``z<d>  KL <KL of dimension d>``."""
    return [f"z{d}  KL {kl[d]:.2f}" for d in dims]


def label_rows(picture: Tensor, labels: list[str]) -> Tensor:
    """``picture`` (a ``[3, H, W]`` grid of ``len(labels)`` equal rows) with each row's label
    written in a white margin on its left; returns ``[3, H, W + LABEL_WIDTH]`` in [0, 1]."""
    _, height, width = picture.shape
    canvas = Image.new("RGB", (width + LABEL_WIDTH, height), "white")
    pixels = (picture.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    canvas.paste(Image.fromarray(pixels), (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=12)
    row_height = (height - PADDING) / len(labels)
    for row, label in enumerate(labels):
        middle = PADDING + row_height * (row + 0.5)
        draw.text((4, middle), label, fill="black", font=font, anchor="lm")
    return torch.from_numpy(np.array(canvas)).permute(2, 0, 1).float() / 255
