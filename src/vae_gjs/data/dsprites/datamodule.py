"""The dSprites DataModule: the real file or the renderer, cached bit-packed in the data folder."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae_gjs.data.base import InMemoryDataModule, PackedBitImages, Split
from vae_gjs.data.dsprites.factors import FULL, IMAGE_SIZE, flat_indices, grid_classes, selection
from vae_gjs.data.dsprites.npz import FILENAME, MD5, URL, read_npz_windows
from vae_gjs.data.dsprites.renderer import SpriteRenderer
from vae_gjs.data.files import download as download_file
from vae_gjs.data.shared import check_test_options, describe, load_cache, save_cache, train_test
from vae_gjs.errors import DataError, check_choice
from vae_gjs.io import file_digest

log = logging.getLogger(__name__)

FOLDER = "dsprites"
SOURCES = ("auto", "real", "procedural")


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
