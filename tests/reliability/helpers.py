"""Running the entry points as a user does (fresh process, no terminal, nothing on stdin) and
checking that a failure is the one-line message the issue asks for."""

from __future__ import annotations

import contextlib
import csv
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import torch

from tests.conftest import DATA_DIR, ROOT, TINY, compose_train
from vae_gjs.rundir import RunDir

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
    """A command started in the background; :meth:`result` waits for it. A thread notes when the
    process ends, so :attr:`seconds` is its run time however late it is read."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started: float
    ended: float | None = None

    def __post_init__(self) -> None:
        threading.Thread(target=self._note_the_end, daemon=True).start()

    def _note_the_end(self) -> None:
        self.process.wait()
        self.ended = time.perf_counter()

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
        """Seconds from the start to the end (to now while it runs)."""
        return (self.ended or time.perf_counter()) - self.started


def launch(
    *args: str,
    logs: Path,
    env: Mapping[str, str | None] | None = None,
    cwd: Path = ROOT,
    address_space: int | None = None,
) -> Launched:
    """Start ``python <args>`` from the project root with stdin closed (a prompt would fail at
    once instead of waiting); stdout and stderr go to files in ``logs``. ``address_space``:
    bytes of virtual memory the process may map (``ulimit -v``), for commands that would
    allocate more than the machine has."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"

    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=user_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            preexec_fn=limit,
        )
    return Launched(process, stdout, stderr, time.perf_counter())


def cli(
    *args: str,
    logs: Path,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 300,
    address_space: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` to the end (see :func:`launch`)."""
    return launch(*args, logs=logs, env=env, address_space=address_space).result(timeout)


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


#: Epochs of 3 slowed steps (``$VAE_GJS_TEST_STEP_DELAY`` seconds each): long enough to be
#: signalled inside epoch 1, cheap on the CPU.
SLOW = (
    "threads=1",
    "trainer.max_steps=-1",
    "trainer.max_epochs=4",
    "trainer.limit_train_batches=3",
    "divergence=kl_qp",
    "divergence._target_=tests.reliability.plugins.SlowKLqp",
)
RESUMES = "the same command resumes the run"


def wait_for(condition: object, run: Launched, timeout: float = 240) -> None:
    """Wait until ``condition()`` holds while ``run`` still runs (failing if it ended first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        if run.process.poll() is not None:
            pytest.fail(f"ended before the signal:\n{run.result().stderr[-3000:]}")
        time.sleep(0.1)
    pytest.fail("timed out waiting to send the signal")


def epochs_done(metrics: Path) -> int:
    """The training epochs a ``metrics.csv`` has rows for (0 if it does not exist yet)."""
    if not metrics.is_file():
        return 0
    with metrics.open(newline="") as handle:
        return sum(1 for row in csv.DictReader(handle) if row.get("train/loss"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error: ")]


def check_stopped(run_dir: Path, name: str = "SIGTERM") -> str:
    """The status of a run stopped by a signal in epoch >= 1; returns its error."""
    record = RunDir.at(run_dir)._read_json("status.json")
    assert record["status"] == "failed", record
    assert record["error"].startswith(f"stopped by {name} at step "), record
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert f"last.ckpt (end of epoch {last['epoch']}) is kept; {RESUMES}" in record["error"]
    assert f"(epoch {last['epoch'] + 1})" in record["error"]  # stopped in the next epoch
    assert not list(run_dir.rglob(".*.tmp"))  # nothing half-written
    return record["error"]


def loky_workers(process: psutil.Process) -> list[psutil.Process]:
    """The joblib (loky) worker processes of a sweep process."""
    return [p for p in process.children() if "popen_loky" in " ".join(p.cmdline())]


def mount_tmpfs(folder: Path, size: str, read_only: bool = False) -> str | None:
    """Mount a tmpfs of ``size`` (``12m``) at ``folder``: a real small file system that fills up
    (or, ``read_only``, refuses every write). ``None`` on success, else why it could not be
    mounted (it needs root where the machine permits mounting)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
    except OSError as error:
        return str(error)
    return None if mounted.returncode == 0 else mounted.stderr.strip() or f"mount exited {mounted.returncode}"


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A real file system of ``size`` at ``folder`` for the block; the test is skipped, with the
    reason, where mounting one is not permitted."""
    refused = mount_tmpfs(folder, size)
    if refused is not None:
        pytest.skip(f"mounting a {size} tmpfs is not permitted here ({refused})")
    try:
        yield folder
    finally:
        unmount(folder)
