"""DeepMind's dSprites file: streaming its 3 GB ``imgs`` in chunks, and bit-packing images (whole
or cropped to windows around the sprite) without ever holding them whole."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vae_gjs.data.dsprites.factors import FACTORS, IMAGE_SIZE, PACKED_BYTES, selection_of
from vae_gjs.errors import DataError

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = f"https://github.com/deepmind/dsprites-dataset/raw/master/{FILENAME}"
#: MD5 of DeepMind's npz, as pinned independently by many public loaders (no SHA-256 is published).
MD5 = "7da33b31b13a06f4b04a70402ce90c2e"


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
