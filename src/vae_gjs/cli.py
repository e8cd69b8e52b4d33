"""What the thin entry points share: resolvers, one-line errors, lazy imports."""

from __future__ import annotations

import importlib
import os
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from vae_gjs.config import validate
from vae_gjs.errors import USER_ERRORS


class UserError(CompactHydraException):
    """Printed by Hydra as its message alone, without a traceback."""


def one_line(message: str) -> str:
    """``message`` on one line: messages quoted from libraries (torchvision's failed download
    lists every mirror on its own line) are joined with spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def run_task(task: str, cfg: DictConfig, check: bool = True) -> Any:
    """Validate ``cfg``, import ``task`` (``"package.module.function"``) and call it on ``cfg``.

    The import comes after validation, so bad values fail before Lightning is loaded. A known
    user-facing error becomes one line on stderr and a non-zero exit (a failed job in a
    sweep); ``HYDRA_FULL_ERROR=1`` shows the traceback instead.
    """
    try:
        if check:
            validate(cfg)
        module, _, function = task.rpartition(".")
        return getattr(importlib.import_module(module), function)(cfg)
    except USER_ERRORS as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise UserError(f"Error: {one_line(str(error))}") from error
