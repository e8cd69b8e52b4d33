"""3D Chairs (Aubry et al., CVPR 2014): renders of 1,393 chair CAD models from 62 viewpoints
(31 azimuths × 2 elevations), 600×600 on a white background, as 1×64×64 grayscale.

Aubry et al.'s archive ``rendered_chairs.tar`` holds ``rendered_chairs/<model>/renders/
image_XXX_pYYY_tZZZ_rRRR.png`` (and ``rendered_chairs/all_chair_names.mat``, unused). Each PNG is
read straight from the archive (or from the extracted ``rendered_chairs/`` folder), flattened
onto white, converted to grayscale, centre-cropped to ``crop``×``crop`` and resized to 64×64
(Lanczos); the result is cached once as one uint8 array ``[N, 64, 64]`` with the model of each
image, checksummed (``chairs64_crop<crop>.npz`` + manifest, in ``<root>/chairs/``).

There is no test split: by default 10% of the *models* (with all their views) are held out.
"""

from __future__ import annotations

import io
import logging
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from vae_gjs.data.base import InMemoryDataModule, Split, UInt8Images
from vae_gjs.data.files import download as download_file
from vae_gjs.data.shared import check_test_options, describe, load_cache, save_cache, train_test
from vae_gjs.errors import DataError, check_int

log = logging.getLogger(__name__)

URL = "https://www.di.ens.fr/willow/research/seeing3Dchairs/data/rendered_chairs.tar"
ARCHIVE = "rendered_chairs.tar"
EXTRACTED = "rendered_chairs"
FOLDER = "chairs"
N_MODELS, N_VIEWS = 1393, 62
IMAGE_SIZE = 64
#: Bumped whenever the preprocessing changes, so old caches are rebuilt.
PREPROCESS_VERSION = 1


def model_of(path: str) -> str | None:
    """The chair model of a render's path (``.../<model>/renders/<image>.png``), or ``None`` for
    anything that is not a PNG render."""
    parts = PurePosixPath(path).parts
    if not parts or not parts[-1].lower().endswith(".png") or parts[-1].startswith("."):
        return None
    if len(parts) >= 3 and parts[-2] == "renders":
        return parts[-3]
    return parts[-2] if len(parts) >= 2 else None


def preprocess(data: bytes, crop: int | None, size: int = IMAGE_SIZE) -> np.ndarray:
    """One PNG (bytes) as ``[size, size]`` uint8 grayscale: transparency flattened onto white,
    centre-cropped to ``crop``×``crop`` (``None``: no crop), resized with Lanczos."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        gray = image.convert("L")
    if crop is not None:
        width, height = gray.size
        if crop > min(width, height):
            raise DataError(f"dataset.crop={crop} is larger than a {width}×{height} render")
        left, top = (width - crop) // 2, (height - crop) // 2
        gray = gray.crop((left, top, left + crop, top + crop))
    return np.asarray(gray.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


@contextmanager
def open_renders(source: Path) -> Iterator[tuple[list[tuple[str, str]], Callable[[str], bytes]]]:
    """``(entries, read)`` for an archive or an extracted folder of renders: ``entries`` are
    ``(model, path)`` of every PNG render sorted by path (so the array's order does not depend on
    the archive's), ``read(path)`` returns its bytes."""
    if source.is_dir():
        paths = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.png"))
        entries = [(model, path) for path in paths if (model := model_of(path)) is not None]
        yield entries, lambda path: (source / path).read_bytes()
        return
    try:
        with tarfile.open(source, "r:*") as archive:
            members = {m.name: m for m in archive.getmembers() if m.isfile() and model_of(m.name) is not None}
            entries = sorted((model_of(name), name) for name in members)  # type: ignore[misc]

            def read(name: str) -> bytes:
                handle = archive.extractfile(members[name])
                assert handle is not None
                return handle.read()

            yield entries, read
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"cannot read {source} ({error}); delete it and fetch {URL} again") from error


def build(source: Path, crop: int | None, size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """``{"images": uint8 [N, size, size], "model": int32 [N], "models": str [M]}`` from an
    archive or folder of renders; ``model[i]`` indexes ``models`` (sorted names)."""
    started = time.perf_counter()
    with open_renders(source) as (entries, read):
        if not entries:
            raise DataError(f"no PNG renders (<model>/renders/*.png) in {source}")
        images = np.empty((len(entries), size, size), dtype=np.uint8)
        for k, (_, path) in enumerate(entries):
            try:
                images[k] = preprocess(read(path), crop, size)
            except (OSError, ValueError, SyntaxError) as error:  # what PIL raises for a broken PNG
                raise DataError(f"cannot decode {path} in {source} ({error})") from error
            except DataError as error:  # a render smaller than the crop: name it
                raise DataError(
                    f"{error} ({path} in {source}); allowed: a smaller dataset.crop or null"
                ) from error
            if (k + 1) % 5000 == 0:
                elapsed = time.perf_counter() - started
                log.info(f"chairs: preprocessed {k + 1:,}/{len(entries):,} renders ({elapsed:.0f} s)")
    models, index = np.unique(np.asarray([model for model, _ in entries]), return_inverse=True)
    if (len(models), len(images)) != (N_MODELS, N_MODELS * N_VIEWS):
        log.warning(
            f"chairs: {source} has {len(images):,} renders of {len(models):,} models "
            f"(Aubry et al.'s archive: {N_MODELS * N_VIEWS:,} of {N_MODELS:,})"
        )
    return {"images": images, "model": index.ravel().astype(np.int32), "models": models.astype(str)}


class Chairs(InMemoryDataModule):
    """3D Chairs at 1×64×64 grayscale (white background), uint8 in memory.

    Args (beyond :class:`InMemoryDataModule`'s):
        download: fetch Aubry et al.'s archive when neither the cache nor the archive nor the
            extracted folder is in ``<root>/chairs/``.
        crop: side of the centre crop of the 600×600 renders before resizing (``None``: no crop).
        test_set: ``heldout`` (``test_fraction`` of the chair *models*, chosen with ``test_seed``,
            all their views held out) or ``train`` (test metrics on the training set: the
            authors' protocol).

    The split targets are the model index of each image (``models`` holds the names).
    """

    name = "chairs"

    def __init__(
        self,
        *args: Any,
        download: bool = True,
        crop: int | None = 400,
        test_set: str = "heldout",
        test_fraction: float = 0.1,
        test_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if crop is not None:  # null: no crop
            check_int("dataset.crop", crop, IMAGE_SIZE)
        check_test_options(test_set, test_fraction)
        self.download = download
        self.crop = crop
        self.test_set = test_set
        self.test_fraction = float(test_fraction)
        self.test_seed = test_seed
        self.models: np.ndarray | None = None
        self._splits: dict[str, Split] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, IMAGE_SIZE, IMAGE_SIZE)

    def cache_path(self, root: Path) -> Path:
        return root / FOLDER / f"chairs{IMAGE_SIZE}_crop{self.crop or 'none'}.npz"

    def load(self, root: Path) -> dict[str, Split]:
        if self._splits is None:
            everything = self._load_all(root / FOLDER, self.cache_path(root))
            self._splits = train_test(
                everything, self.test_set, self.test_fraction, self.test_seed, groups=everything.targets
            )
            log.info(describe("chairs", self._splits, self.test_set))
        return dict(self._splits)

    def _load_all(self, folder: Path, cache: Path) -> Split:
        meta = {"crop": self.crop, "size": IMAGE_SIZE, "version": PREPROCESS_VERSION}
        arrays = load_cache(cache, meta)
        if arrays is None:
            source = self._source(folder)
            log.info(f"chairs: preprocessing {source} into {cache} (once)")
            arrays = build(source, self.crop)
            save_cache(cache, arrays, meta)
        self.models = arrays["models"]
        pixels = torch.from_numpy(arrays["images"]).unsqueeze(1)
        return Split(UInt8Images(pixels), torch.from_numpy(arrays["model"].astype(np.int64)))

    def _source(self, folder: Path) -> Path:
        archive, extracted = folder / ARCHIVE, folder / EXTRACTED
        if archive.is_file():
            return archive
        if extracted.is_dir():
            return extracted
        problem = "dataset.download=false"
        if self.download:
            try:
                log.info(f"chairs: downloading {URL} to {archive}")
                return download_file(URL, archive, timeout=60.0)
            except DataError as error:
                problem = f"the download failed: {error.__cause__ or error}"
        raise DataError(
            f"chairs: no {ARCHIVE} (or extracted {EXTRACTED}/) in {folder} and {problem}. "
            f"Fetch {URL} and put it in {folder}, or set VAE_GJS_DATA_DIR / data_dir= to a folder whose "
            f"{FOLDER}/ holds it"
        )
