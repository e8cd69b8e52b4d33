"""The README's commands as a user types them: read from its fenced ``bash`` blocks, so that a
test runs the documented command itself and README and tests cannot drift apart."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import ROOT, run_script

README = ROOT / "README.md"
#: The project's scripts, named by their path when a command runs from another folder.
SCRIPTS = ("train.py", "evaluate.py")


def commands(path: Path = README) -> list[str]:
    """Every command of the ``bash`` blocks of ``path``, continuation lines joined and comments
    dropped, in order (``python train.py -m 'alpha=range(0.1,1,0.1)'``)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                found.append(shlex.join(words))
    return found


def command(containing: str, path: Path = README) -> list[str]:
    """The words of the one README command that contains ``containing``."""
    (match,) = [c for c in commands(path) if containing in c]
    return shlex.split(match)


def run_as_typed(
    words: Sequence[str], cwd: Path, *, shrink: Sequence[str] = (), timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the command ``words`` (``python train.py ...``) as typed in the folder ``cwd``, with
    ``shrink`` overrides added after it (what a user could add to make it small). ``python`` is
    this interpreter; a script of the project is named by its path."""
    assert words[0] == "python", words
    args = [str(ROOT / word) if word in SCRIPTS else word for word in words[1:]]
    return run_script(*args, *shrink, cwd=cwd, timeout=timeout)
