"""dSprites (Matthey et al., 2017): 737,280 binary 64×64 images of a white 2D shape on black, every
combination of 6 factors exactly once, in DeepMind's order (posY varies fastest, then posX,
orientation, scale, shape; color has one value).

Two sources with the same layout and factors:

* ``real``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` in ``<root>/dsprites/``,
  downloaded where the internet exists and checked against its MD5, then bit-packed once into
  a checksummed cache next to it (``imgs`` inflates to 3 GB; it is streamed, never held whole).
* ``procedural``: :class:`SpriteRenderer`, a vectorised renderer of the same factor grid,
  deterministic, generated once and cached bit-packed in ``<root>/dsprites/``.

``source=auto`` (the default) uses the real file when it is there or can be downloaded and the
renderer otherwise, and says so in the log. In memory each image is a bit-packed 32×32 window
around the sprite plus the window's corner: 96 MB for the whole set (377 MB bit-packed whole,
3 GB as uint8), put back on the 64×64 canvas per batch (:class:`~vae_gjs.data.base.PackedBitImages`).
How the renderer was matched to the real images, and how closely: ``docs/datasets.md``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vae_gjs.data.base import InMemoryDataModule, PackedBitImages, Split
from vae_gjs.data.files import download as download_file
from vae_gjs.data.shared import check_test_options, describe, load_cache, save_cache, train_test
from vae_gjs.errors import ConfigError, DataError, check_choice
from vae_gjs.io import file_digest

log = logging.getLogger(__name__)

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = f"https://github.com/deepmind/dsprites-dataset/raw/master/{FILENAME}"
#: MD5 of DeepMind's npz, as pinned independently by many public loaders (no SHA-256 is published).
MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
FOLDER = "dsprites"
FACTORS = ("color", "shape", "scale", "orientation", "posX", "posY")
SIZES = (1, 3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
N_IMAGES = math.prod(SIZES)
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8
SOURCES = ("auto", "real", "procedural")
#: Statistics of the real images published with disent (N. Michlo, ``compute_data_mean_std``):
#: the mean pixel value, and the mean over images of each image's pixel standard deviation.
REAL_MEAN_INTENSITY = 0.042494423521889584
REAL_MEAN_IMAGE_STD = 0.19516645880626055

Selection = tuple[tuple[int, ...], ...]
FULL: Selection = tuple(tuple(range(n)) for n in SIZES)


def factor_values() -> dict[str, np.ndarray]:
    """The factor values of DeepMind's ``latents_possible_values`` (orientation includes both 0 and
    2π, so orientation classes 0 and 39 draw the same image, as in the real file)."""
    return {
        "color": np.array([1.0]),
        "shape": np.array([1.0, 2.0, 3.0]),
        "scale": np.linspace(0.5, 1.0, 6),
        "orientation": np.linspace(0.0, 2 * np.pi, 40),
        "posX": np.linspace(0.0, 1.0, 32),
        "posY": np.linspace(0.0, 1.0, 32),
    }


def selection(factors: Mapping[str, Sequence[int]] | None = None) -> Selection:
    """A sub-grid of the factors: ``{name: class indices}`` (all values of an unnamed factor)."""
    factors = dict(factors or {})
    unknown = sorted(set(factors) - set(FACTORS))
    if unknown:
        raise ConfigError(f"dataset.factors.{unknown[0]} is unknown; allowed: {', '.join(FACTORS)}")
    chosen = []
    for name, size in zip(FACTORS, SIZES, strict=True):
        indices = tuple(int(i) for i in factors.get(name, range(size)))
        if not indices or len(set(indices)) != len(indices) or not all(0 <= i < size for i in indices):
            raise ConfigError(
                f"dataset.factors.{name}={list(indices)} is not allowed; "
                f"allowed: distinct indices in [0, {size})"
            )
        chosen.append(tuple(sorted(indices)))
    return tuple(chosen)


def grid_classes(sel: Selection = FULL) -> np.ndarray:
    """``[n, 6]`` factor classes of the images of ``sel`` in DeepMind's order (posY fastest)."""
    mesh = np.meshgrid(*[np.asarray(s, dtype=np.uint8) for s in sel], indexing="ij")
    return np.stack(mesh, axis=-1).reshape(-1, len(FACTORS))


def classes_to_values(classes: np.ndarray) -> np.ndarray:
    """``latents_values`` (float64 ``[n, 6]``) of factor ``classes``."""
    values = factor_values()
    return np.stack([values[name][classes[:, j]] for j, name in enumerate(FACTORS)], axis=1)


def flat_indices(classes: np.ndarray) -> np.ndarray:
    """Row of each image of ``classes`` in the full 737,280-image array."""
    return np.ravel_multi_index(tuple(classes.T.astype(np.int64)), SIZES)


def selection_of(classes: np.ndarray) -> Selection:
    """The sub-grid that ``classes`` enumerates in DeepMind's order, or a :class:`DataError`."""
    sel = tuple(tuple(int(v) for v in np.unique(classes[:, j])) for j in range(len(FACTORS)))
    if classes.shape != (math.prod(len(s) for s in sel), len(FACTORS)) or not np.array_equal(
        classes, grid_classes(sel)
    ):
        raise DataError("latents_classes is not a full factor grid in DeepMind's order (posY fastest)")
    return sel


# ---------------------------------------------------------------------------------------------
# The procedural renderer
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def heart_mask(resolution: int, half_extent: float = 0.6) -> Tensor:
    """Inside-mask of the heart on a ``resolution``² grid of cells covering ``[-half_extent,
    half_extent]²`` in sprite units (x right, y down): the classic parametric heart
    ``x = 16 sin³t, y = 13 cos t − 5 cos 2t − 2 cos 3t − cos 4t``, 1 unit wide, lobes up, its area
    centroid at the origin (the centre of rotation). Filled by even-odd scanlines."""
    t = np.linspace(0.0, 2 * np.pi, 4096, endpoint=False)
    x = 16 * np.sin(t) ** 3 / 32
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) / 32
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2
    x = x - ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    y = y - ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    centres = -half_extent + (np.arange(resolution) + 0.5) * (2 * half_extent / resolution)
    x0, y0, x1, y1 = x, y, np.roll(x, -1), np.roll(y, -1)
    mask = np.zeros((resolution, resolution), dtype=bool)
    for row, yc in enumerate(centres):
        spans = (y0 <= yc) != (y1 <= yc)
        if spans.any():
            crossings = np.sort(
                x0[spans] + (yc - y0[spans]) * (x1[spans] - x0[spans]) / (y1[spans] - y0[spans])
            )
            mask[row] = np.searchsorted(crossings, centres) % 2 == 1
    return torch.from_numpy(mask).reshape(-1)


@functools.lru_cache(maxsize=1)
def heart_radius() -> float:
    """Largest distance from the heart's centroid to its outline, in heart widths."""
    mask = heart_mask(1200).reshape(1200, 1200).numpy()
    rows, cols = np.nonzero(mask)
    centres = -0.6 + (np.arange(1200) + 0.5) * (1.2 / 1200)
    return float(np.sqrt(centres[rows] ** 2 + centres[cols] ** 2).max()) + 1.2 / 1200


@dataclass(frozen=True)
class SpriteRenderer:
    """Draws dSprites' factor grid as binary 64×64 images (each pixel sampled at its centre).

    What DeepMind published (README, metadata, and the author's note in dsprites-dataset issue
    #2: vector shapes drawn with Love2D on a canvas of normalised size 1, then rasterised) fixes
    the factor values, not the geometry. The geometry below is this renderer's choice: ``size``
    is calibrated so that the mean pixel value matches the real set's published 0.042494, and
    the shapes' relative areas so that the mean per-image std matches the published 0.195166
    (``docs/datasets.md`` has the numbers and what stays unverified):

    * a shape of scale ``s`` has unit ``U = size · s`` pixels: the square's side is ``U``; the
      ellipse is ``ellipse_length · U`` long (horizontal at orientation 0) and ``ellipse_ratio``
      as wide as long; the heart is ``heart_width · U`` wide, lobes up at orientation 0, and
      turns about its area centroid;
    * orientation rotates the shape about its centre, clockwise on screen (Love2D's sense);
    * posX/posY in [0, 1] put the centre at ``64 · (margin + (1 − 2·margin) · pos)`` pixels from
      the left/top edge (16 to 48 px: steps of 1.03 px; no shape is ever clipped).

    Each sprite is drawn once per (posX, posY) pair in a window around its centre, vectorised
    over all positions, then placed on the canvas.
    """

    size: float = 19.31
    ellipse_length: float = 4 / 3
    ellipse_ratio: float = 0.5
    heart_width: float = 1.1
    margin: float = 0.25
    heart_resolution: int = 1200
    #: Bumped whenever the drawing changes, so old caches are rebuilt.
    version: int = 1

    def centres(self, positions: np.ndarray) -> np.ndarray:
        """Pixel coordinate (0 = the canvas edge) of the sprite's centre for posX/posY values."""
        return IMAGE_SIZE * (self.margin + (1 - 2 * self.margin) * np.asarray(positions, dtype=np.float64))

    def window(self) -> int:
        """Side of the square window around the centre that holds any sprite: a multiple of 8
        (so a window packs into whole bytes), at most 64; 32 for the default geometry."""
        radius = self.size * max(math.sqrt(0.5), self.ellipse_length / 2, self.heart_width * heart_radius())
        return min(IMAGE_SIZE, 8 * math.ceil((2 * math.ceil(radius) + 2) / 8))

    def _axis(self, centres: np.ndarray, unit: float, window: int) -> tuple[Tensor, np.ndarray]:
        """Sprite coordinates (in units) of the window's pixel centres along one axis, and where
        each window starts on the canvas."""
        starts = np.clip(np.floor(centres).astype(int) - window // 2, 0, IMAGE_SIZE - window)
        pixel = starts[:, None] + np.arange(window)[None, :] + 0.5
        return torch.from_numpy((pixel - centres[:, None]) / unit).float(), starts

    def windows(
        self, shape: int, scale: float, orientation: float, pos_x: np.ndarray, pos_y: np.ndarray
    ) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """One sprite at every position: ``[len(pos_x), len(pos_y), w, w]`` bool windows, and the
        canvas column / row where each window starts (per posX / per posY)."""
        window, unit = self.window(), self.size * scale
        u, x_starts = self._axis(self.centres(pos_x), unit, window)  # [nx, w] columns
        v, y_starts = self._axis(self.centres(pos_y), unit, window)  # [ny, w] rows
        cos, sin = math.cos(orientation), math.sin(orientation)
        # Sprite coordinates of each pixel centre: the inverse rotation of its offset from the centre.
        a = (cos * u)[:, None, None, :] + (sin * v)[None, :, :, None]
        b = (-sin * u)[:, None, None, :] + (cos * v)[None, :, :, None]
        return self._inside(SHAPES[shape], a, b), x_starts, y_starts

    def block(
        self, shape: int, scale: float, orientation: float, pos_x: np.ndarray, pos_y: np.ndarray
    ) -> Tensor:
        """``[len(pos_x), len(pos_y), 64, 64]`` bool images of one sprite at every position."""
        inside, x_starts, y_starts = self.windows(shape, scale, orientation, pos_x, pos_y)
        nx, ny, window = inside.shape[0], inside.shape[1], inside.shape[2]
        images = torch.zeros(nx, ny, IMAGE_SIZE, IMAGE_SIZE, dtype=torch.bool)
        for i, x in enumerate(x_starts.tolist()):
            for j, y in enumerate(y_starts.tolist()):
                images[i, j, y : y + window, x : x + window] = inside[i, j]
        return images

    def _inside(self, shape: str, a: Tensor, b: Tensor) -> Tensor:
        if shape == "square":
            return torch.maximum(a.abs(), b.abs()) <= 0.5
        if shape == "ellipse":
            half = self.ellipse_length / 2
            return (a / half).square() + (b / (half * self.ellipse_ratio)).square() <= 1.0
        mask, n, half = heart_mask(self.heart_resolution), self.heart_resolution, 0.6
        cells = n / (2 * half * self.heart_width)
        col = ((a + half * self.heart_width) * cells).floor()
        row = ((b + half * self.heart_width) * cells).floor()
        valid = (col >= 0) & (col < n) & (row >= 0) & (row < n)
        index = (row.clamp(0, n - 1) * n + col.clamp(0, n - 1)).long()
        return mask[index] & valid

    def _sprites(self, sel: Selection) -> tuple[list[tuple[int, float, float]], np.ndarray, np.ndarray]:
        """(shape, scale, orientation) of every sprite of ``sel`` in order, and the positions."""
        values = factor_values()
        sprites = [
            (shape, float(values["scale"][scale]), float(values["orientation"][orientation]))
            for _ in sel[0]
            for shape in sel[1]
            for scale in sel[2]
            for orientation in sel[3]
        ]
        return sprites, values["posX"][list(sel[4])], values["posY"][list(sel[5])]

    def render(self, sel: Selection = FULL) -> np.ndarray:
        """Bit-packed whole images ``[n, 512]`` (``np.packbits`` of each 64×64) of ``sel``, in order."""
        sprites, pos_x, pos_y = self._sprites(sel)
        per_block = len(pos_x) * len(pos_y)
        out = np.empty((len(sprites) * per_block, PACKED_BYTES), dtype=np.uint8)
        for k, sprite in enumerate(sprites):
            images = self.block(*sprite, pos_x, pos_y).reshape(per_block, -1).numpy()
            out[k * per_block : (k + 1) * per_block] = np.packbits(images, axis=1)
        return out

    def render_windows(
        self, sel: Selection = FULL, progress: Callable[[int, int], None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The images of ``sel`` as bit-packed windows: ``(windows [n, w²/8] uint8, offsets [n, 2]
        uint8 (row, col))``, ``w = window()``: what :class:`~vae_gjs.data.base.PackedBitImages`
        holds (96 MB for the whole set), rendered without ever holding whole images."""
        sprites, pos_x, pos_y = self._sprites(sel)
        per_block = len(pos_x) * len(pos_y)
        window = self.window()
        windows = np.empty((len(sprites) * per_block, window * window // 8), dtype=np.uint8)
        offsets = np.empty((len(sprites) * per_block, 2), dtype=np.uint8)
        for k, sprite in enumerate(sprites):
            inside, x_starts, y_starts = self.windows(*sprite, pos_x, pos_y)
            rows = slice(k * per_block, (k + 1) * per_block)
            windows[rows] = np.packbits(inside.reshape(per_block, -1).numpy(), axis=1)
            offsets[rows, 0] = np.tile(y_starts, len(x_starts))
            offsets[rows, 1] = np.repeat(x_starts, len(y_starts))
            if progress is not None:
                progress(k + 1, len(sprites))
        return windows, offsets

    def meta(self) -> dict[str, Any]:
        return asdict(self)


def unpack(packed: np.ndarray) -> np.ndarray:
    """``[n, 64, 64]`` uint8 images in {0, 1} from bit-packed rows."""
    return np.unpackbits(packed, axis=1).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


Chunks = Callable[[], Iterator[tuple[int, np.ndarray]]]


def bounding_boxes(images: np.ndarray) -> np.ndarray:
    """``[n, 4]`` (first row, last row, first column, last column) of the pixels of each image
    (``[n, 64, 64]``); an empty image gets (0, -1, 0, -1)."""
    boxes = np.empty((len(images), 4), dtype=np.int16)
    for k, lines in enumerate((images.any(axis=2), images.any(axis=1))):
        boxes[:, 2 * k] = lines.argmax(axis=1)
        boxes[:, 2 * k + 1] = IMAGE_SIZE - 1 - lines[:, ::-1].argmax(axis=1)
        empty = ~lines.any(axis=1)
        boxes[empty, 2 * k], boxes[empty, 2 * k + 1] = 0, -1
    return boxes


def windows_from(chunks: Chunks, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Crop ``n`` 64×64 images, given in chunks (``chunks()`` yields ``(start, [m, 64, 64])`` and
    is called twice), to one square window size that holds every image's pixels.

    Returns ``(windows [n, side²/8] uint8, offsets [n, 2] uint8 (row, col), side)``: ``side`` is
    the largest bounding-box side rounded up to a multiple of 8. Lossless: every pixel of every
    image is inside its window.
    """
    boxes = np.empty((n, 4), dtype=np.int16)
    for start, images in chunks():
        boxes[start : start + len(images)] = bounding_boxes(images)
    extent = max(int((boxes[:, 1] - boxes[:, 0]).max()), int((boxes[:, 3] - boxes[:, 2]).max()), 0) + 1
    side = min(IMAGE_SIZE, 8 * math.ceil(extent / 8))
    offsets = np.clip(boxes[:, [0, 2]], 0, IMAGE_SIZE - side).astype(np.uint8)
    grid = np.arange(side)
    windows = np.empty((n, side * side // 8), dtype=np.uint8)
    for start, images in chunks():
        corner = offsets[start : start + len(images)].astype(np.intp)
        crops = images[
            np.arange(len(images))[:, None, None],
            corner[:, 0, None, None] + grid[None, :, None],
            corner[:, 1, None, None] + grid[None, None, :],
        ]
        windows[start : start + len(images)] = np.packbits(crops.reshape(len(images), -1), axis=1)
    return windows, offsets, side


def to_windows(packed: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`windows_from` of bit-packed whole images."""

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, len(packed), chunk):
            yield start, unpack(packed[start : start + chunk])

    return windows_from(chunks, len(packed))


# ---------------------------------------------------------------------------------------------
# DeepMind's file
# ---------------------------------------------------------------------------------------------


def _read_exact(handle: Any, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = handle.read(left)
        if not part:
            raise DataError(f"truncated array: {left} bytes missing")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _npz_images(path: Path, n: int, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, uint8 [m, 64, 64])`` chunks of ``imgs`` streamed from a dSprites npz (the whole
    array inflates to 3 GB), checking its shape (``n`` images), dtype and values (0/1)."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("imgs.npy") as handle:
            version = np.lib.format.read_magic(handle)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = reader(handle)
            if shape != (n, IMAGE_SIZE, IMAGE_SIZE) or dtype.itemsize != 1 or fortran:
                raise DataError(f"{path}: imgs is {shape} {dtype}, expected ({n}, 64, 64) bytes of 0/1")
            for start in range(0, shape[0], chunk):
                rows = min(chunk, shape[0] - start)
                pixels = np.frombuffer(_read_exact(handle, rows * IMAGE_SIZE * IMAGE_SIZE), dtype=np.uint8)
                if pixels.max(initial=0) > 1:
                    raise DataError(f"{path}: imgs has values other than 0 and 1 (images {start}..)")
                yield start, pixels.reshape(rows, IMAGE_SIZE, IMAGE_SIZE)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise DataError(
            f"cannot read {path} as a dSprites npz ({error}); delete it and fetch it again"
        ) from error


def read_classes(path: Path) -> np.ndarray:
    """``latents_classes`` (uint8 ``[n, 6]``) of a dSprites npz, checked to be a factor grid in
    DeepMind's order (no pickle is loaded: the file's ``metadata`` is left alone)."""
    try:
        with zipfile.ZipFile(path) as archive:
            classes = np.load(io.BytesIO(archive.read("latents_classes.npy")), allow_pickle=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise DataError(
            f"cannot read {path} as a dSprites npz ({error}); delete it and fetch it again"
        ) from error
    if classes.ndim != 2 or classes.shape[1] != len(FACTORS):
        raise DataError(f"{path}: latents_classes is {classes.shape}, expected [n, 6]")
    classes = classes.astype(np.uint8)
    selection_of(classes)
    return classes


def read_npz(path: Path, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """``(packed whole images [n, 512], latents_classes [n, 6])`` of a dSprites npz (377 MB for
    the full set: for comparisons; training uses :func:`read_npz_windows`)."""
    classes = read_classes(path)
    packed = np.empty((len(classes), PACKED_BYTES), dtype=np.uint8)
    for start, images in _npz_images(path, len(classes), chunk):
        packed[start : start + len(images)] = np.packbits(images.reshape(len(images), -1), axis=1)
    return packed, classes


def read_npz_windows(path: Path, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(windows, offsets, latents_classes)`` of a dSprites npz (:func:`windows_from`), reading
    ``imgs`` twice in chunks so that no whole-image array is ever held."""
    classes = read_classes(path)
    windows, offsets, _ = windows_from(lambda: _npz_images(path, len(classes), chunk), len(classes))
    return windows, offsets, classes


# ---------------------------------------------------------------------------------------------
# Statistics for comparing two versions of the images (benchmarks/compare_dsprites.py)
# ---------------------------------------------------------------------------------------------

_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)


def image_statistics(packed: np.ndarray, classes: np.ndarray, chunk: int = 16384) -> dict[str, Any]:
    """Areas and centroids of binary images, aggregated per factor value.

    Returns ``mean_intensity`` (mean pixel value), ``mean_image_std`` (mean over images of each
    image's pixel std, ddof=1: disent's statistic), ``area[shape][scale]`` (mean pixels),
    ``area_std[shape][scale]``, ``centroid_x[posX]`` / ``centroid_y[posY]`` (mean centre of mass,
    in pixels from the left/top edge, pixel i covering [i, i+1)), ``extent[shape][scale]`` (mean
    of the larger bounding-box side at orientation class 0), ``empty`` (images with no pixel) and
    ``distinct_images`` (the real file's orientations 0 and 2π coincide: 718,848 at most).
    """
    n = len(packed)
    area = np.empty(n)
    cx = np.full(n, np.nan)
    cy = np.full(n, np.nan)
    extent = np.full(n, np.nan)
    centre = np.arange(IMAGE_SIZE) + 0.5
    for start in range(0, n, chunk):
        images = unpack(packed[start : start + chunk])
        cols, rows = images.sum(1, dtype=np.int32), images.sum(2, dtype=np.int32)
        a = cols.sum(1)
        area[start : start + len(a)] = a
        with np.errstate(invalid="ignore", divide="ignore"):
            cx[start : start + len(a)] = cols @ centre / a
            cy[start : start + len(a)] = rows @ centre / a
        width = (cols > 0).sum(1)
        height = (rows > 0).sum(1)
        extent[start : start + len(a)] = np.maximum(width, height)
    p = area / (IMAGE_SIZE * IMAGE_SIZE)
    shape, scale, orientation = classes[:, 1], classes[:, 2], classes[:, 3]

    def grouped(
        values: np.ndarray, *keys: np.ndarray, where: np.ndarray | None = None, std: bool = False
    ) -> dict:
        """Mean (or std) of ``values`` per distinct tuple of ``keys``, as nested dicts."""
        keep = ~np.isnan(values) if where is None else where & ~np.isnan(values)
        groups, inverse = np.unique(np.stack([k[keep] for k in keys], axis=1), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        count = np.bincount(inverse)
        mean = np.bincount(inverse, weights=values[keep]) / count
        if std:
            mean = np.sqrt(np.maximum(np.bincount(inverse, weights=values[keep] ** 2) / count - mean**2, 0))
        table: dict = {}
        for key, value in zip(groups.tolist(), mean.tolist(), strict=True):
            node = table
            for level in key[:-1]:
                node = node.setdefault(level, {})
            node[key[-1]] = value
        return table

    return {
        "n_images": n,
        "mean_intensity": float(p.mean()),
        "mean_image_std": float(np.sqrt(p * (1 - p) * 4096 / 4095).mean()),
        "empty": int((area == 0).sum()),
        "distinct_images": len({hash(row.tobytes()) for row in packed}),
        "area": grouped(area, shape, scale),
        "area_std": grouped(area, shape, scale, std=True),
        "extent_at_orientation_0": grouped(extent, shape, scale, where=orientation == 0),
        "centroid_x": grouped(cx, classes[:, 4]),
        "centroid_y": grouped(cy, classes[:, 5]),
    }


def agreement(a: np.ndarray, b: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Pixel agreement of two aligned bit-packed sets: mean IoU and mean differing pixels per shape."""
    both = _POPCOUNT[a & b].sum(1)
    either = _POPCOUNT[a | b].sum(1)
    differ = _POPCOUNT[a ^ b].sum(1)
    iou = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    return {
        "mean_iou": {
            SHAPES[s]: float(iou[classes[:, 1] == s].mean()) for s in np.unique(classes[:, 1]).tolist()
        },
        "mean_differing_pixels": {
            SHAPES[s]: float(differ[classes[:, 1] == s].mean()) for s in np.unique(classes[:, 1]).tolist()
        },
        "identical_images": int((differ == 0).sum()),
    }


# ---------------------------------------------------------------------------------------------
# The DataModule
# ---------------------------------------------------------------------------------------------


class DSprites(InMemoryDataModule):
    """dSprites at 1×64×64, bit-packed in memory.

    Args (beyond :class:`InMemoryDataModule`'s):
        source: ``auto`` (the real file if present or downloadable, else the renderer, with a
            warning), ``real`` (an error without the file) or ``procedural``.
        download: try to fetch DeepMind's file when it is missing.
        test_set: ``heldout`` (``test_fraction`` of the images, chosen with ``test_seed``, never
            trained on) or ``train`` (the test metrics are computed on the training set: the
            authors' protocol; dSprites has no official test split).
        factors: ``{factor: class indices}`` to use a sub-grid (tests, quick runs); ``None``: all.

    After loading, ``source_used`` says which source was used and ``latents_classes`` holds the
    ``[n, 6]`` factor classes of every image (the split targets are the shape class).
    """

    name = "dsprites"

    def __init__(
        self,
        *args: Any,
        source: str = "auto",
        download: bool = True,
        test_set: str = "heldout",
        test_fraction: float = 0.1,
        test_seed: int = 0,
        factors: Mapping[str, Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = check_choice("dataset.source", source, SOURCES)
        check_test_options(test_set, test_fraction)
        self.download = download
        self.test_set = test_set
        self.test_fraction = float(test_fraction)
        self.test_seed = test_seed
        self.selection = selection(factors)
        self.renderer = SpriteRenderer()
        self.source_used: str | None = None
        self.latents_classes: np.ndarray | None = None
        self._splits: dict[str, Split] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, IMAGE_SIZE, IMAGE_SIZE)

    def load(self, root: Path) -> dict[str, Split]:
        if self._splits is None:
            everything = self._load_all(root / FOLDER)
            self._splits = train_test(everything, self.test_set, self.test_fraction, self.test_seed)
            log.info(describe(f"dsprites ({self.source_used})", self._splits, self.test_set))
        return dict(self._splits)

    def _load_all(self, folder: Path) -> Split:
        source = self.source
        if source != "procedural":
            reason = self._fetch_real(folder)
            if reason is None:
                source = "real"
            elif source == "real":
                raise DataError(
                    f"dsprites: DeepMind's file is not available ({reason}). "
                    f"Fetch {URL} and put it in {folder}, or use dataset.source=procedural (or auto)"
                )
            else:
                log.warning(
                    f"dsprites: DeepMind's file is not available ({reason}); using the procedural renderer "
                    f"instead (as with dataset.source=procedural; see docs/datasets.md for how it compares). "
                    f"To use the real images put {FILENAME} in {folder}"
                )
                source = "procedural"
        arrays = self._real(folder) if source == "real" else self._procedural(folder)
        self.source_used = source
        self.latents_classes = grid_classes(self.selection)
        targets = torch.from_numpy(self.latents_classes[:, 1].astype(np.int64))
        side = math.isqrt(arrays["windows"].shape[1] * 8)
        images = PackedBitImages(
            torch.from_numpy(arrays["windows"]),
            self.image_shape,
            torch.from_numpy(arrays["offsets"]),
            (side, side),
        )
        return Split(images, targets)

    def _fetch_real(self, folder: Path) -> str | None:
        """``None`` when the real file is in ``folder`` (downloaded if needed) with the right MD5;
        otherwise why not. A file with a wrong MD5 is an error, never silently replaced."""
        path = folder / FILENAME
        if not path.is_file():
            if not self.download:
                return f"{path} is missing and dataset.download=false"
            try:
                log.info(f"dsprites: downloading {URL}")
                download_file(URL, path, timeout=30.0)
            except DataError as error:
                return f"{path} is missing and downloading it failed: {error.__cause__ or error}"
        actual = file_digest(path, "md5")
        if actual != MD5:
            raise DataError(
                f"corrupt data file {path}: MD5 {actual} != expected {MD5} (truncated or modified); "
                f"delete it and fetch {URL} again, or use dataset.source=procedural"
            )
        return None

    def _real(self, folder: Path) -> dict[str, np.ndarray]:
        cache = folder / "dsprites_real_windows.npz"
        meta = {"source": "real", "md5": MD5, "layout": "windows"}
        arrays = load_cache(cache, meta)
        if arrays is None:
            log.info(f"dsprites: bit-packing {FILENAME} into {cache.name} (once)")
            windows, offsets, classes = read_npz_windows(folder / FILENAME)
            if not np.array_equal(classes, grid_classes(FULL)):
                raise DataError(f"{folder / FILENAME}: not the full 737,280-image grid")
            arrays = {"windows": windows, "offsets": offsets}
            save_cache(cache, arrays, meta)
        if self.selection != FULL:
            rows = flat_indices(grid_classes(self.selection))
            arrays = {name: array[rows] for name, array in arrays.items()}
        return arrays

    def _procedural(self, folder: Path) -> dict[str, np.ndarray]:
        full = self.selection == FULL
        tag = "full" if full else hashlib.sha1(json.dumps(self.selection).encode()).hexdigest()[:12]
        cache = folder / f"dsprites_procedural_v{self.renderer.version}_{tag}.npz"
        meta = {
            "source": "procedural",
            "layout": "windows",
            "renderer": self.renderer.meta(),
            "selection": [list(s) for s in self.selection],
        }
        arrays = load_cache(cache, meta)
        if arrays is not None:
            return arrays
        n = len(grid_classes(self.selection))
        log.info(f"dsprites: rendering {n:,} images into {cache} (once)")
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if done % 180 == 0 or done == total:
                log.info(f"dsprites: rendered {done}/{total} sprites ({time.perf_counter() - started:.0f} s)")

        windows, offsets = self.renderer.render_windows(self.selection, progress if full else None)
        log.info(f"dsprites: rendered and packed {n:,} images in {time.perf_counter() - started:.1f} s")
        arrays = {"windows": windows, "offsets": offsets}
        save_cache(cache, arrays, meta)
        return arrays
