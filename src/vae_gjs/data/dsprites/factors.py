"""dSprites' factor grid: the 6 factors, their values, sub-grids and DeepMind's image order
(posY varies fastest, then posX, orientation, scale, shape; color has one value)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from vae_gjs.errors import ConfigError, DataError

FACTORS = ("color", "shape", "scale", "orientation", "posX", "posY")
SIZES = (1, 3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
N_IMAGES = math.prod(SIZES)
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8

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
