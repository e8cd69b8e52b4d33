"""Running the entry points as a user does (fresh process, no terminal, nothing on stdin) and
checking that a failure is the one-line message the issue asks for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, ROOT, TINY, compose_train

#: Hydra's hint after a compact error, printed when HYDRA_FULL_ERROR is not set.
FULL_ERROR_HINT = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."


def user_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a user's shell: the shared data folder, W&B offline, no
    HYDRA_FULL_ERROR; ``extra`` adds variables (``None`` removes one)."""
    env = {**os.environ, "VAE_GJS_DATA_DIR": str(DATA_DIR), "WANDB_MODE": "offline"}
    env.pop("HYDRA_FULL_ERROR", None)
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Launched:
    """A command started in the background; :meth:`result` waits for it."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float

    def result(self, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, self.stdout.read_text(), self.stderr.read_text()
        )

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def launch(*args: str, logs: Path, env: Mapping[str, str | None] | None = None, cwd: Path = ROOT) -> Launched:
    """Start ``python <args>`` from the project root with stdin closed (a prompt would fail at
    once instead of waiting); stdout and stderr go to files in ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=user_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    return Launched(process, stdout, stderr, time.perf_counter())


def cli(
    *args: str, logs: Path, env: Mapping[str, str | None] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` to the end (see :func:`launch`)."""
    return launch(*args, logs=logs, env=env).result(timeout)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The user-facing error of a failed run: exit status != 0, no traceback anywhere, exactly
    one ``Error: ...`` line on stderr, complete on that line — the last line of a single run;
    in a sweep Hydra's blank line and hint follow it directly — containing every fragment.
    Returns the line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    i = errors[0]
    after = lines[i + 1 :]
    assert after == [] or after[:2] == ["", FULL_ERROR_HINT], result.stderr[-3000:]
    if "-m" not in result.args and "--multirun" not in result.args:
        assert after == [], result.stderr[-3000:]  # a single run: the one line, nothing around it
    for fragment in fragments:
        assert fragment in lines[i], (fragment, lines[i])
    return lines[i]


def stop_all(launched: Iterable[Launched]) -> None:
    """Kill the commands of ``launched`` that still run (a fixture's teardown after a failure)."""
    for item in launched:
        if item.process.poll() is None:
            item.process.kill()
            item.process.wait()


def train_error(overrides: list[str], run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The one-line error train.py gives for ``overrides`` (its code path, in this process)."""
    from vae_gjs import cli as entry_points

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    cfg = compose_train([*TINY, f"data_dir={DATA_DIR}", "threads=1", *overrides], run_dir=run_dir)
    with pytest.raises(entry_points.UserError) as info:
        entry_points.train(cfg)
    assert "\n" not in str(info.value)
    return str(info.value)
