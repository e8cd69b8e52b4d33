"""What the thin entry points share: validate, then import and run the task; one-line errors.

Each task is imported inside its function, after validation, so ``--help`` and bad values
answer before torch and Lightning load (~7 s).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from vae_gjs.config import validate, validate_evaluate
from vae_gjs.errors import USER_ERRORS


class UserError(CompactHydraException):
    """Printed by Hydra as its message alone, without a traceback."""


def one_line(message: str) -> str:
    """``message`` on one line: messages quoted from libraries (torchvision's failed download
    lists every mirror on its own line) are joined with spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


@contextmanager
def user_errors() -> Iterator[None]:
    """A known user-facing error becomes one line on stderr and a non-zero exit (a failed job
    in a sweep); ``HYDRA_FULL_ERROR=1`` shows the traceback instead."""
    try:
        yield
    except USER_ERRORS as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise UserError(f"Error: {one_line(str(error))}") from error


def train(cfg: DictConfig) -> float | None:
    """train.py: validate ``cfg``, then train (:func:`vae_gjs.tasks.train.train`)."""
    with user_errors():
        validate(cfg)
        from vae_gjs.tasks.train import train as run

        return run(cfg)


def evaluate(cfg: DictConfig) -> Any:
    """evaluate.py: validate ``cfg`` (and a single run folder), then evaluate or report
    (:func:`vae_gjs.tasks.evaluate.evaluate`)."""
    with user_errors():
        validate_evaluate(cfg)
        from vae_gjs.tasks.evaluate import evaluate as run

        return run(cfg)
