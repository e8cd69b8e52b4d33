"""Where the data lives when no folder is given (no torch or Lightning here: ``conf/`` resolves it
before anything heavy is imported)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "VAE_GJS_DATA_DIR"
#: A data folder shared by the clones beside it: ``<clone>/../shared/data`` (CI's layout).
SHARED_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def default_data_dir() -> str:
    """The data folder when none is given (``data_dir`` in ``conf/``): ``$VAE_GJS_DATA_DIR`` if set,
    else ``./data`` if it exists, else ``shared/data`` beside the clone if that exists, else
    ``./data`` (where MNIST and Fashion-MNIST get downloaded)."""
    if os.environ.get(ENV_DATA_DIR):
        return os.environ[ENV_DATA_DIR]
    if not Path("data").is_dir() and SHARED_DATA_DIR.is_dir():
        return str(SHARED_DATA_DIR)
    return "data"


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``root`` if given, else :func:`default_data_dir`."""
    return Path(root or default_data_dir()).expanduser()
