"""Matplotlib for the figure writers: the Agg backend, imported on first use, saved atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vae_gjs.io import write_atomic


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 130) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically and close it."""
    target = Path(path)
    write_atomic(
        target, lambda handle: fig.savefig(handle, format="png", dpi=dpi, bbox_inches="tight"), binary=True
    )
    pyplot().close(fig)
    return target
