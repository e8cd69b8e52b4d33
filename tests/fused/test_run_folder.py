"""A fused member's run folder has a separate run's guarantees: one process at a time (its lock,
held by the group while it trains it; nothing written by a process the lock refuses), and an
unfinished member resumes only with the config its weights were trained with."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import TINY
from tests.reliability.helpers import (
    SLOW,
    check_stopped,
    cli,
    epochs_done,
    launch,
    one_line_error,
    small_disk,
    stop_all,
    wait_for,
)
from tests.reliability.plugins import DELAY_ENV
from vae_gjs.rundir import RunDir

pytestmark = pytest.mark.slow

FUSED = ("hydra/launcher=fused", "hydra.launcher.n_jobs=1")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """The bytes of the files a refused process must not touch: the config and Hydra's record."""
    files = [folder / "config.yaml", *sorted((folder / ".hydra").glob("*.yaml"))]
    return {path.name: path.read_bytes() for path in files}


def test_the_group_holds_its_members_folders(tmp_path: Path) -> None:
    """While a fused sweep trains, a separate ``train.py`` into a member's folder and a second
    fused sweep into the same folder are refused in one line each and write nothing there
    (both used to train the same members at once, exit 0); the first sweep goes on."""
    sweep = tmp_path / "sweep"
    overrides = (*TINY, *SLOW, "trainer.max_epochs=40", "lam=1,2", *FUSED, f"hydra.sweep.dir={sweep}")
    first = launch("train.py", "-m", *overrides, logs=tmp_path / "first", env={DELAY_ENV: "0.3"})
    try:
        wait_for(lambda: sum(epochs_done(m) >= 1 for m in sweep.glob("*/metrics.csv")) == 2, first)
        member = next(p for p in sweep.iterdir() if p.is_dir() and "lam=1" in p.name)
        before = _snapshot(member)
        pid = str(first.process.pid)

        alone = cli(
            "train.py",
            *TINY,
            *SLOW,
            "lam=1",
            f"hydra.run.dir='{member}'",
            logs=tmp_path / "alone",
            timeout=120,
        )
        one_line_error(alone, f"{member} is in use by another process (pid {pid}) training in it")
        second = cli("train.py", "-m", *overrides, logs=tmp_path / "second", timeout=120)
        assert second.returncode != 0 and "Traceback" not in second.stdout + second.stderr
        assert "2 of 2 jobs failed" in second.stderr, second.stderr[-3000:]
        assert _snapshot(member) == before
        assert RunDir.at(member).status == "running" and first.process.poll() is None
        first.process.send_signal(signal.SIGTERM)
        assert first.result(timeout=120).returncode == 143
    finally:
        stop_all([first])
    for folder in (p for p in sweep.iterdir() if p.is_dir()):
        check_stopped(folder)


def test_a_cut_fused_sweep_resumes_only_with_its_config(tmp_path: Path) -> None:
    """Re-running a cut fused sweep with ``seed=2 optim.lr=0.001`` into the same folders is
    refused per member with the keys that differ (it used to resume the seed-1234 weights and
    rewrite config.yaml with the new values); the folders are untouched."""
    sweep = tmp_path / "sweep"
    base = (
        *TINY,
        "threads=1",
        "trainer.max_steps=-1",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "test=false",
        "divergence=gjs",
        "alpha=0.2,0.4",
        *FUSED,
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=job${hydra.job.num}",
    )
    done = cli("train.py", "-m", *base, logs=tmp_path / "first", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    members = sorted(p for p in sweep.iterdir() if p.is_dir())
    for member in members:
        RunDir.at(member).set_status("running")  # as a kill leaves it
    before = {member: _snapshot(member) for member in members}

    again = cli("train.py", "-m", *base, "seed=2", "optim.lr=0.001", logs=tmp_path / "again", timeout=240)
    assert again.returncode != 0 and "Traceback" not in again.stdout + again.stderr
    assert "2 of 2 jobs failed" in again.stderr, again.stderr[-3000:]
    records = json.loads((sweep / "failures.json").read_text())
    for record, member in zip(records, members, strict=True):
        assert record["error"].startswith(f"Error: {member} holds an unfinished run with another config: ")
        assert "optim.lr (0.0001 in the folder, 0.001 now)" in record["error"]
        assert "seed (1234 in the folder, 2 now)" in record["error"]
    assert {member: _snapshot(member) for member in members} == before


def test_a_real_full_disk_leaves_every_member_at_one_resume_point(tmp_path: Path) -> None:
    """On an 18 MB file system the first member's two checkpoints of epoch 0 fit (5.7 MB each) and
    the second's do not: each member fails with the full disk's one line, and no member moves to
    a resume point the others lack (the first used to keep its last.ckpt, the second none)."""
    with small_disk(tmp_path / "disk", "18m") as disk:
        sweep = disk / "sweep"
        result = cli(
            "train.py",
            "-m",
            *TINY,
            "threads=1",
            "trainer.max_steps=-1",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "divergence=gjs",
            "alpha=0.2,0.4",
            *FUSED,
            f"hydra.sweep.dir={sweep}",
            logs=tmp_path / "logs",
            timeout=240,
        )
        assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
        assert "2 of 2 jobs failed" in result.stderr, result.stderr[-3000:]
        members = sorted(p for p in sweep.iterdir() if p.is_dir())
        lines = [line for line in result.stderr.splitlines() if "alpha=" in line and ": Error: " in line]
        assert len(lines) == 2, result.stderr[-3000:]
        assert all(f": Error: cannot write {sweep}/" in line for line in lines), lines
        assert all(": no space left on device; " in line for line in lines), lines
        assert [RunDir.at(m).last_ckpt.exists() for m in members] == [False, False]
        assert not list(sweep.rglob(".*.tmp"))
