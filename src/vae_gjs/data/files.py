"""Downloading and verifying raw data files."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from vae_gjs.datadir import ENV_DATA_DIR
from vae_gjs.errors import DataError
from vae_gjs.io import atomic_open, file_digest


def verify(folder: Path, expected: Mapping[str, str]) -> None:
    """Check that every file in ``expected`` (name -> SHA-256) is in ``folder`` with that checksum.

    Raises a :class:`DataError` naming the folder and the missing files, or the corrupt file with
    both checksums (a truncated download is the usual cause: delete it and fetch it again).
    """
    missing = [name for name in expected if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"missing data files in {folder}: {', '.join(missing)} "
            f"(expected: {', '.join(expected)}; "
            f"set {ENV_DATA_DIR} or data_dir= to the folder that holds them)"
        )
    for name, digest in expected.items():
        actual = file_digest(folder / name)
        if actual != digest:
            raise DataError(
                f"corrupt data file {folder / name}: SHA-256 {actual} != expected {digest} "
                "(truncated or modified; delete it and download it again)"
            )


def download(url: str, destination: Path, expected_sha256: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination`` atomically and check its SHA-256 when one is given.

    Fails with a :class:`DataError` that names the URL and the destination when there is no
    network, so the user knows exactly what to fetch and where to put it.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(destination, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        raise DataError(
            f"could not download {url} ({error}); "
            f"without internet, fetch it elsewhere and put it at {destination}"
        ) from error
    if expected_sha256 is not None:
        actual = file_digest(destination)
        if actual != expected_sha256:
            destination.unlink()
            raise DataError(f"download of {url} has SHA-256 {actual}, expected {expected_sha256}; removed it")
    return destination
