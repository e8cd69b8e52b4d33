"""Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vae_gjs.errors import DataError

_UBYTE = 0x08


def read_idx(path: Path) -> torch.Tensor:
    """An uncompressed IDX file of unsigned bytes as a ``uint8`` tensor of its declared shape."""
    raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path} has {len(raw)} bytes, its header promises {expected} (truncated?)")
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy())
