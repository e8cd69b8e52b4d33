"""User-facing errors: one line that names the bad value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A bad value in a run's configuration or arguments; the entry points print it without a
    traceback and exit non-zero."""


class DataError(RuntimeError):
    """Missing, truncated or corrupt data files; the message names the folder and the files."""


class RunError(RuntimeError):
    """A run folder that cannot be used: no checkpoint, foreign architecture, old config, a corrupt
    file, another process training in it."""


class StorageError(RunError):
    """A file or folder that cannot be written (disk full, read-only); the message names the path."""


def as_real(name: str, value: Any) -> float:
    """``value`` as a finite float, or a :class:`ConfigError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}={value!r} is not a number; allowed: a finite real number")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not finite; allowed: a finite real number")
    return float(value)


def check_in_unit_interval(name: str, value: Any) -> float:
    """A real number in [0, 1] (the skew α), or a :class:`ConfigError`."""
    number = as_real(name, value)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{name}={value!r} is outside [0, 1]; allowed: a real number with 0 <= {name} <= 1")
    return number


def check_non_negative(name: str, value: Any) -> float:
    """A real number ≥ 0 (the weight λ), or a :class:`ConfigError`."""
    number = as_real(name, value)
    if number < 0:
        raise ConfigError(f"{name}={value!r} is negative; allowed: a real number >= 0")
    return number


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """An integer (≥ ``minimum`` if given; ``True``/``False`` are not integers here), or a
    :class:`ConfigError`."""
    integer = isinstance(value, int) and not isinstance(value, bool)
    if minimum is None:
        if not integer:
            raise ConfigError(f"{name}={value!r} is not an integer; allowed: an integer")
    elif not integer or value < minimum:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: an integer >= {minimum}")
    return value


def check_positive_int(name: str, value: Any) -> int:
    """An integer ≥ 1 (latent size, batch size), or a :class:`ConfigError`."""
    return check_int(name, value, 1)


def check_bool(name: str, value: Any) -> bool:
    """``true`` or ``false``, or a :class:`ConfigError`."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: true or false")
    return value


def check_fraction(name: str, value: Any) -> float:
    """A real number strictly between 0 and 1 (a held-out share), or a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: a number in (0, 1)")
    return float(value)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """One of ``allowed``, or a :class:`ConfigError` listing them."""
    options = sorted(allowed)
    if value not in options:
        raise ConfigError(f"{name}={value!r} is unknown; allowed: {', '.join(options)}")
    return value


def check_positive_real(name: str, value: Any) -> float:
    """A real number > 0, or a :class:`ConfigError`."""
    number = as_real(name, value)
    if number <= 0:
        raise ConfigError(f"{name}={value!r} is not positive; allowed: a real number > 0")
    return number


class Interrupted(RuntimeError):
    """A run stopped by SIGTERM or Ctrl-C; the message says where and which checkpoint is kept."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the step and the term."""


#: Errors that the entry points report as one line (the traceback only with HYDRA_FULL_ERROR=1).
USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, DataError, RunError, NonFiniteLossError)


def closest(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean <x>?)"`` for the candidate closest to a mistyped ``name`` (difflib), or ``""``."""
    import difflib

    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
