"""Where a result comes from: the git commit of the code and the versions of the packages that
computed it, recorded with every run (``results.json``, ``eval.json``, the W&B config)."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

#: The distributions whose versions decide the numbers of a run.
PACKAGES = (
    "vae-gjs",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "numpy",
    "wandb",
)


def _git(*args: str) -> str | None:
    """``git <args>`` in the folder of this package's source (``None`` outside a clone, e.g. an
    installed wheel, or without git)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@cache
def provenance() -> dict[str, Any]:
    """``{"git_commit", "git_dirty", "python", "versions": {distribution: version}}``: the commit
    of the clone the package runs from (``None`` if it is not one), whether tracked files differ
    from it, and the installed version of each of :data:`PACKAGES` (``None`` if absent)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "versions": versions,
    }
