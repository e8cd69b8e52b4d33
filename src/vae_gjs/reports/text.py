"""What the table reports share: number formatting, CSV text, the list of missing runs, atomic
writing."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from vae_gjs.io import write_atomic


def fmt(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, or ``—`` for a missing (None or NaN) one."""
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def csv_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV text: ``header``, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def missing_line(missing: list[str]) -> str:
    """The Markdown line that lists a report's missing runs (``none`` when complete)."""
    return "Missing runs: " + ("; ".join(missing) if missing else "none")


def write_texts(out_dir: str | Path, texts: dict[str, str]) -> dict[str, Path]:
    """Write each ``{file name: text}`` into ``out_dir`` atomically; returns the paths by name."""
    paths = {}
    for name, text in texts.items():
        write_atomic(Path(out_dir) / name, lambda handle, text=text: handle.write(text))
        paths[name] = Path(out_dir) / name
    return paths
