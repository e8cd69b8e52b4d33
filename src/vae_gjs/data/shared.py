"""Helpers shared by the 64×64 families (dSprites, 3D Chairs): checksummed array caches in the
data folder, and deterministic held-out test splits.

A cache is one uncompressed ``.npz`` plus a manifest ``<name>.npz.json`` holding the SHA-256 of
the ``.npz``, the arrays' shapes and dtypes, and ``meta`` (what the cache was built from: source,
renderer version, preprocessing). Both files are written atomically, the manifest last, so a
cache without a manifest is an interrupted write and is rebuilt; a cache whose SHA-256 differs
from its manifest is corrupt and is reported, never used.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vae_gjs.data.base import Split
from vae_gjs.errors import DataError, check_choice, check_fraction
from vae_gjs.io import atomic_open, file_digest, write_json

log = logging.getLogger(__name__)

#: ``test_set`` values: a held-out part of the images, or the training set itself (the paper's protocol).
TEST_SETS = ("heldout", "train")


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_cache(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bool:
    """Write ``arrays`` to ``path`` (uncompressed ``.npz``) and its manifest, atomically.

    Returns ``False`` (with a warning) when the folder is not writable: the data is then used
    from memory and built again next time.
    """
    try:
        with atomic_open(path, "wb") as handle:
            np.savez(handle, **arrays)
        write_json(
            manifest_path(path),
            {
                "meta": dict(meta),
                "sha256": file_digest(path),
                "arrays": {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()},
            },
        )
    except OSError as error:
        log.warning(f"could not write the cache {path} ({error}); using the data from memory only")
        return False
    return True


def load_cache(path: Path, meta: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays cached at ``path`` if they were built from ``meta``; ``None`` when there is no
    usable cache (absent, interrupted write, or built from other settings: rebuild it).

    Raises a :class:`DataError` naming the file when the cache is corrupt (checksum mismatch).
    """
    manifest = manifest_path(path)
    if not path.is_file():
        return None
    if not manifest.is_file():
        log.warning(f"{path} has no manifest {manifest.name} (interrupted write?); building it again")
        return None
    try:
        info = json.loads(manifest.read_text())
        expected_sha, shapes, built_from = info["sha256"], info["arrays"], info["meta"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(
            f"corrupt cache manifest {manifest} ({error}); "
            f"delete it and {path.name} and run again to rebuild them"
        ) from error
    if built_from != json.loads(json.dumps(dict(meta))):
        log.info(f"{path} was built with other settings ({built_from}); building it again")
        return None
    actual = file_digest(path)
    if actual != expected_sha:
        raise DataError(
            f"corrupt cache file {path}: SHA-256 {actual} != {expected_sha} recorded in {manifest.name} "
            "(truncated or modified); delete it and run again to rebuild it"
        )
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    found = {name: [list(a.shape), a.dtype.str] for name, a in arrays.items()}
    if found != shapes:
        raise DataError(
            f"cache file {path} holds {found}, its manifest says {shapes}; delete both and run again"
        )
    return arrays


def check_test_options(test_set: str, test_fraction: float) -> None:
    check_choice("dataset.test_set", test_set, TEST_SETS)
    check_fraction("dataset.test_fraction", test_fraction)


def heldout_split(
    split: Split, fraction: float, seed: int, groups: Tensor | None = None
) -> tuple[Split, Split]:
    """``(train, test)``: a deterministic ``fraction`` of the images (or, with ``groups``, of the
    distinct group ids, e.g. chair models, so no group is in both) held out with ``seed``.

    The held-out count is ``round(fraction · n)`` with at least one item on each side; both
    parts keep the original order of the images.
    """
    if groups is None:
        n, inverse = len(split), None
    else:
        unique, inverse = torch.unique(groups, return_inverse=True)
        n = len(unique)
    if n < 2:
        raise DataError(f"cannot hold out a test set from {n} {'image' if groups is None else 'group'}(s)")
    n_test = min(max(1, round(fraction * n)), n - 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    is_test = torch.zeros(n, dtype=torch.bool)
    is_test[order[:n_test]] = True
    if inverse is not None:
        is_test = is_test[inverse]
    return split.subset(torch.nonzero(~is_test).squeeze(1)), split.subset(torch.nonzero(is_test).squeeze(1))


def train_test(
    split: Split, test_set: str, fraction: float, seed: int, groups: Tensor | None = None
) -> dict[str, Split]:
    """``{"train", "test"}`` for a dataset that ships as one set: a held-out test split
    (``test_set="heldout"``) or the whole set as both (``"train"``: the authors' protocol)."""
    if test_set == "train":
        return {"train": split, "test": split}
    train, test = heldout_split(split, fraction, seed, groups)
    return {"train": train, "test": test}


def describe(name: str, splits: Mapping[str, Split], test_set: str) -> str:
    sizes = ", ".join(f"{key} {len(value):,}" for key, value in splits.items())
    where = "the training set (authors' protocol)" if test_set == "train" else "a held-out split"
    return f"{name}: {sizes}; test = {where}"
