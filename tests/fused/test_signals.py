"""Signals on the fused path (``hydra/launcher=fused``) keep a separate run's promise: SIGTERM and
Ctrl-C stop a group at the end of its current step with exit code 143 / 130, every member's
status says why and where, its last.ckpt is kept, the sweep writes its summary and
failures.json; a group in a worker process stops with its sweep, SIGKILL included."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil
import pytest

from tests.conftest import TINY
from tests.reliability.helpers import (
    SLOW,
    Launched,
    check_stopped,
    epochs_done,
    launch,
    loky_workers,
    wait_for,
)
from tests.reliability.plugins import DELAY_ENV

pytestmark = pytest.mark.slow

#: Two members of one group (they differ in λ only), each step slowed by its divergence.
GROUP = (*TINY, *SLOW, "lam=1,2", "hydra/launcher=fused")


def _fused_sweep(sweep: Path, logs: Path, *overrides: str) -> Launched:
    return launch(
        "train.py", "-m", *GROUP, *overrides, f"hydra.sweep.dir={sweep}", logs=logs, env={DELAY_ENV: "0.2"}
    )


def _members(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and "lam=" in p.name)


def _all_in_epoch_1(sweep: Path, members: int) -> bool:
    folders = [p for p in sweep.glob("*lam=*") if p.is_dir()] if sweep.is_dir() else []
    return len(folders) == members and all(epochs_done(p / "metrics.csv") >= 1 for p in folders)


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT (Ctrl-C)")]
)
def test_a_signal_stops_an_in_process_group_at_the_end_of_its_step(
    sig: int, code: int, name: str, tmp_path: Path
) -> None:
    """``n_jobs=1``: the group trains in the sweep's own process (it used to train to the end
    and exit 0, every member ``completed``)."""
    sweep = tmp_path / "sweep"
    run = _fused_sweep(sweep, tmp_path, "hydra.launcher.n_jobs=1")
    wait_for(lambda: _all_in_epoch_1(sweep, 2), run)
    run.process.send_signal(sig)
    result = run.result(timeout=120)
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert f"Sweep stopped by {name}: 2 of 2 jobs did not complete" in result.stderr
    records = json.loads((sweep / "failures.json").read_text())
    errors = {check_stopped(folder, name) for folder in _members(sweep)}
    assert len(errors) == 1  # the group stopped at one step: the same line for every member
    assert [r["error"] for r in records] == [f"Error: {errors.pop()}"] * 2
    assert not list(sweep.glob("*/results.json"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_groups_in_worker_processes_stop_with_their_sweep(sig: int, tmp_path: Path) -> None:
    """``n_jobs=2``: two groups (one per seed) in two joblib workers. SIGTERM is forwarded to the
    workers; after SIGKILL each worker notices that its sweep is gone and stops itself (a group
    used to keep training and write ``completed`` after the sweep had died)."""
    sweep = tmp_path / "sweep"
    run = _fused_sweep(sweep, tmp_path, "seed=1,2", "hydra.launcher.n_jobs=2")
    wait_for(lambda: _all_in_epoch_1(sweep, 4), run, timeout=300)
    workers = loky_workers(psutil.Process(run.process.pid))
    assert len(workers) == 2
    children = psutil.Process(run.process.pid).children()
    run.process.send_signal(sig)
    result = run.result(timeout=120)
    _, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
    for folder in _members(sweep):
        check_stopped(folder)  # SIGKILL: the worker's own SIGTERM, sent when the sweep was gone
    if sig == signal.SIGTERM:
        assert result.returncode == 143, result.stderr[-3000:]
        assert "Traceback" not in result.stdout + result.stderr
        records = json.loads((sweep / "failures.json").read_text())
        assert len(records) == 4 and all(
            r["error"].startswith("Error: stopped by SIGTERM at step ") for r in records
        )
    else:
        assert result.returncode == -signal.SIGKILL
