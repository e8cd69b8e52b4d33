"""Markdown tables whose cells cannot break the table: Markdown-special characters are escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: ASCII punctuation that Markdown (CommonMark + GitHub tables) gives a meaning: ``|`` splits a
#: table cell, ``*``/``_``/``~`` start emphasis or strike-through, ``[``/``]``/``<``/``>`` links and
#: HTML, ``` ` ``` code, ``\\`` escapes, ``^`` superscript in some renderers. CommonMark allows a
#: backslash before any ASCII punctuation, so escaping renders the character itself.
SPECIAL = re.compile(r"([\\`*_\[\]<>|~^#])")


def escape(text: str) -> str:
    """``text`` with every Markdown-special character backslash-escaped (``a|b`` -> ``a\\|b``)."""
    return SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """The lines of a Markdown table; ``align`` has one letter per column (``l`` or ``r``). Every
    cell is escaped, so each line has exactly ``len(header)`` cells."""
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells, one alignment letter each")

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(escape(cell) for cell in cells) + " |"

    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    return [line(header), rule, *(line(row) for row in rows)]
