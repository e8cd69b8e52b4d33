"""Faults: a killed run resumes to exactly the uninterrupted run's numbers, interrupted writes keep
the previous file, a NaN stops a run with a clear message, a failing sweep job does not stop the
sweep, W&B never blocks without network or key, and the same seed gives the same numbers.
See docs/reliability.md for the table of faults and messages."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import CONF, ROOT, TINY, compose_train, train_tiny
from tests.divergences.test_divergences_stability import LOGVARS
from tests.reliability.helpers import Launched, cli, launch, one_line_error, stop_all
from tests.reliability.plugins import DELAY_ENV
from tests.wandb_offline import run_summary
from vae_gjs.errors import NonFiniteLossError
from vae_gjs.loggers import AtomicCSVLogger, resolve_wandb_mode
from vae_gjs.rundir import RunDir, read_plan, run_folders

#: The wall-time column of metrics.csv; every other cell must match exactly.
WALL_TIME = "time/epoch_s"


def _rows(path: Path) -> list[dict[str, str]]:
    """metrics.csv as written (strings, so equality is exact), without the wall-time column."""
    with path.open(newline="") as handle:
        return [{k: v for k, v in row.items() if k != WALL_TIME} for row in csv.DictReader(handle)]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ kill and resume

#: 4 epochs of 5 steps; SlowKLqp sleeps per step where $VAE_GJS_TEST_STEP_DELAY is set (the killed
#: process only), so the kill lands inside an epoch without spending CPU. Same numbers as kl_qp.
RESUMABLE = (
    "threads=1",
    "trainer.max_steps=-1",
    "trainer.max_epochs=4",
    "trainer.limit_train_batches=5",
    "divergence=kl_qp",
    "divergence._target_=tests.reliability.plugins.SlowKLqp",
)


def _wait_for_finished_epoch(metrics: Path, epoch: int, run: Launched, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{run.result().stderr[-3000:]}")
        if metrics.is_file() and any(
            int(row["epoch"]) >= epoch and row.get("train/loss") for row in _rows(metrics)
        ):
            return
        time.sleep(0.05)
    pytest.fail(f"no epoch {epoch} in {metrics} after {timeout} s")


@pytest.mark.slow
def test_killed_run_resumes_to_exactly_the_uninterrupted_metrics(tmp_path: Path, data_dir: Path) -> None:
    killed = tmp_path / "killed"
    run = launch(
        "train.py",
        *TINY,
        *RESUMABLE,
        f"hydra.run.dir={killed}",
        logs=tmp_path / "logs",
        env={DELAY_ENV: "0.3"},
    )
    try:
        _wait_for_finished_epoch(killed / "metrics.csv", 1, run)
        os.kill(run.process.pid, signal.SIGKILL)
    finally:
        if run.process.poll() is None:
            run.process.kill()
        run.process.wait()
    assert run.process.returncode == -signal.SIGKILL

    # What a kill leaves: a stale "running" status, no results, last.ckpt of a finished epoch.
    folder = RunDir.at(killed)
    assert folder.status == "running" and not folder.results_file.exists()
    checkpoint = _load(folder.last_ckpt)
    assert 1 <= checkpoint["epoch"] < 3 and checkpoint["global_step"] == 5 * (checkpoint["epoch"] + 1)
    shutil.copytree(killed, tmp_path / "by_ckpt_path")

    # Resume: the same command into the same folder, and ckpt_path=last; then an uninterrupted run.
    train_tiny(killed, RESUMABLE, data_dir=data_dir)
    train_tiny(tmp_path / "by_ckpt_path", [*RESUMABLE, "ckpt_path=last"], data_dir=data_dir)
    train_tiny(tmp_path / "uninterrupted", RESUMABLE, data_dir=data_dir)

    reference = _rows(tmp_path / "uninterrupted" / "metrics.csv")
    assert [row["epoch"] for row in reference] == ["0", "1", "2", "3", "4"]  # 4 train rows + the test row
    for name in ("killed", "by_ckpt_path"):
        assert _rows(tmp_path / name / "metrics.csv") == reference, name
        results = RunDir.at(tmp_path / name).results
        assert (results["steps"], results["epochs"]) == (20, 4), name
        assert results["test/rec"] == RunDir.at(tmp_path / "uninterrupted").results["test/rec"], name
        assert RunDir.at(tmp_path / name).status == "completed"


# --------------------------------------------------------------------------- interrupted writes


def test_a_kill_between_last_ckpt_and_its_row_loses_no_row(tmp_path: Path, data_dir: Path) -> None:
    """Lightning saves an epoch's last.ckpt before it hands the loggers that epoch's row; a kill
    between the two used to leave the resumed run's metrics.csv without that epoch (2 of 10
    rows lost to repeated SIGKILLs). The checkpoint carries the row, and the resume puts it back."""
    run = tmp_path / "run"
    epochs = ["trainer.max_steps=-1", "trainer.limit_train_batches=2", "test=false"]
    train_tiny(run, [*epochs, "trainer.max_epochs=2"], data_dir=data_dir)
    metrics = run / "metrics.csv"
    rows = _rows(metrics)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    with metrics.open("w", newline="") as handle:  # the window: epoch 1's last.ckpt, not its row
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerow(rows[0])
    RunDir.at(run).set_status("running")
    train_tiny(run, [*epochs, "trainer.max_epochs=3"], data_dir=data_dir)
    resumed = _rows(metrics)
    assert [row["epoch"] for row in resumed] == ["0", "1", "2"]
    assert resumed[1] == rows[1]  # the very row, from the checkpoint


@pytest.mark.parametrize("name", ["metrics.csv", "last.ckpt"])
def test_kill_while_writing_keeps_the_previous_file(name: str, tmp_path: Path) -> None:
    target, source = tmp_path / name, tmp_path / "source"
    if name == "metrics.csv":
        target.write_text("epoch,step,train/loss\n0,9,1.5\n")
        source.write_text("epoch,step,train/loss\n" + "".join(f"{e},{10 * e + 9},1.25\n" for e in range(50)))
    else:
        torch.save({"epoch": 0, "w": torch.zeros(10)}, target)
        torch.save({"epoch": 1, "w": torch.ones(100_000)}, source)
    before = target.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.writer", str(target), str(source)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"HALF\n"
        (partial,) = tmp_path.glob(f".{name}.*.tmp")  # the half-written file exists ...
        assert partial.stat().st_size == len(source.read_bytes()) // 2
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
    assert target.read_bytes() == before  # ... but never under the final name
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [name, "source"]
    )
    if name == "last.ckpt":
        assert _load(target)["epoch"] == 0


def test_interrupted_checkpoint_and_metrics_writes_keep_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vae_gjs.callbacks import AtomicCheckpointIO

    checkpoints, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    checkpoints.save_checkpoint({"epoch": 0, "w": torch.zeros(10)}, path)
    metrics = AtomicCSVLogger(tmp_path / "metrics.csv")
    metrics.log_metrics({"epoch": 0, "train/loss": 1.5}, step=9)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    real_save, real_writerow = torch.save, csv.DictWriter.writerow

    def save_half(obj: object, handle: io.BufferedWriter) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer)
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise KeyboardInterrupt  # Ctrl-C in the middle of the checkpoint

    def write_then_fail(self: csv.DictWriter, row: dict) -> object:
        written = real_writerow(self, row)
        if row["epoch"] == 1:
            raise OSError("No space left on device")
        return written

    monkeypatch.setattr(torch, "save", save_half)
    monkeypatch.setattr(csv.DictWriter, "writerow", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint({"epoch": 1, "w": torch.ones(10_000)}, path)
    with pytest.raises(OSError, match="No space left"):
        metrics.log_metrics({"epoch": 1, "train/loss": 1.25}, step=19)
    monkeypatch.undo()

    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temporary file left either
    assert _load(path)["epoch"] == 0
    assert list(AtomicCSVLogger(tmp_path / "metrics.csv").rows) == [0]


# ----------------------------------------------------------------------------- numerical faults


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer here, on purpose
def test_logvar_bound_keeps_every_divergence_finite_at_the_extremes() -> None:
    """The encoder's soft bound (conf/model/burgess.yaml) keeps log σ² inside the range that the
    divergence stability tests cover, so an encoder pushed to either extreme still gives a
    finite loss and finite gradients with every divergence config; without the bound it does not."""
    from vae_gjs.module import build_module

    bound = compose_train().model.logvar_bound
    assert min(LOGVARS) <= -bound and bound <= max(LOGVARS)
    batch = (torch.rand(4, 1, 32, 32), torch.zeros(4, dtype=torch.long))
    for choice in sorted(p.stem for p in (CONF / "divergence").glob("*.yaml")):
        torch.manual_seed(0)
        module = build_module(compose_train([f"divergence={choice}", "alpha=0.5"]).module, (1, 32, 32))
        latent = module.net.latent_dim
        for extreme in (1e6, -1e6):
            with torch.no_grad():
                module.net.encoder.fc[-1].bias[latent:] = extreme
            loss = module._step(batch, "train")
            loss.backward()
            assert torch.isfinite(loss), (choice, extreme)
            assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None), (
                choice
            )
            module.zero_grad()
    unbounded = build_module(compose_train(["model.logvar_bound=null"]).module, (1, 32, 32))
    with torch.no_grad():
        unbounded.net.encoder.fc[-1].bias[unbounded.net.latent_dim :] = 1e6
    with pytest.raises(NonFiniteLossError, match="step 0"):
        unbounded._step(batch, "train")


@pytest.fixture(scope="module")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Launched, Path]]]:
    """The slow fault runs, started at once: ``name -> (process, folder)``."""
    base = tmp_path_factory.mktemp("faults")
    started: dict[str, tuple[Launched, Path]] = {}
    nan_run = base / "nan_run"
    started["nan"] = (
        launch(
            "train.py",
            *TINY,
            "threads=1",
            "trainer.max_steps=-1",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=3",
            "divergence=kl_qp",
            "divergence._target_=tests.reliability.plugins.NaNAfterKLqp",
            "+divergence.after=4",
            f"hydra.run.dir={nan_run}",
            logs=base / "nan_logs",
        ),
        nan_run,
    )
    sweep = base / "sweep"
    started["sweep"] = (
        launch(
            "train.py",
            "-m",
            # a job that fails while it trains (a bad value would refuse the sweep before it starts)
            "model._target_=tests.reliability.plugins.NaNDecoderBurgess",
            "+model.nan_after=100,0",
            *TINY,
            "threads=1",
            f"hydra.sweep.dir={sweep}",
            logs=base / "sweep_logs",
        ),
        sweep,
    )
    home = base / "home"
    home.mkdir()
    offline: dict[str, str | None] = {key: None for key in os.environ if key.startswith("WANDB_")}
    offline.update(
        WANDB_MODE=None,  # mode=auto decides
        HOME=str(home),
        NETRC=str(home / ".netrc"),
        XDG_CONFIG_HOME=str(home / ".config"),
        WANDB_API_KEY="0123456789abcdef0123456789abcdef01234567",  # looks like a key, is not one
        WANDB_BASE_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    short = ("trainer.max_steps=2", "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false")
    short += ("dataset.eval_batch_size=64", "threads=1")
    wandb_run = base / "wandb_run"
    started["wandb"] = (
        launch(
            "train.py",
            "logger=wandb",
            *short,
            f"hydra.run.dir={wandb_run}",
            logs=base / "wandb_logs",
            env=offline,
        ),
        wandb_run,
    )
    csv_run = base / "csv_run"  # the same run without W&B, at the same time: its duration is the yardstick
    started["csv"] = (
        launch("train.py", "logger=csv", *short, f"hydra.run.dir={csv_run}", logs=base / "csv_logs"),
        csv_run,
    )
    yield started
    stop_all(process for process, _ in started.values())


@pytest.mark.slow
def test_nan_in_the_divergence_stops_the_run_naming_step_and_term(
    background: dict[str, tuple[Launched, Path]],
) -> None:
    process, run_dir = background["nan"]
    message = "non-finite loss at step 4 (epoch 1) in the divergence term; last.ckpt (end of epoch 0) is kept"
    one_line_error(process.result(), f"Error: {message}")
    record = RunDir.at(run_dir)._read_json("status.json")
    assert record["status"] == "failed"
    assert record["error"] == f"{message} (weights at that step: nonfinite-step4.ckpt)"
    at_fault = _load(run_dir / "checkpoints" / "nonfinite-step4.ckpt")
    assert at_fault["global_step"] == 4
    assert all(torch.isfinite(w).all() for w in at_fault["state_dict"].values())
    last = _load(run_dir / "checkpoints" / "last.ckpt")  # epoch 0 (steps 0-2), as it was saved
    assert (last["epoch"], last["global_step"]) == (0, 3)
    assert [row["epoch"] for row in _rows(run_dir / "metrics.csv")] == ["0"]


@pytest.mark.slow
def test_nan_in_the_reconstruction_names_that_term(tmp_path: Path, data_dir: Path) -> None:
    overrides = [
        "threads=1",
        "model._target_=tests.reliability.plugins.NaNDecoderBurgess",
        "+model.nan_after=2",
    ]
    with pytest.raises(NonFiniteLossError) as info:
        train_tiny(tmp_path, overrides, data_dir=data_dir)
    message = (  # in epoch 0 no checkpoint exists yet, and the message says so
        "non-finite loss at step 2 (epoch 0) in the reconstruction term; no checkpoint was saved yet "
        "(the next attempt starts from the beginning)"
    )
    assert str(info.value) == message
    assert RunDir.at(tmp_path)._read_json("status.json")["error"].startswith(message)
    assert _load(tmp_path / "checkpoints" / "nonfinite-step2.ckpt")["global_step"] == 2


# ------------------------------------------------------------------------------------- sweeps


@pytest.mark.slow
def test_a_successful_rerun_of_a_sweep_removes_its_failures_json(tmp_path: Path) -> None:
    """``failures.json`` describes the sweep's last attempt: it used to stay after a re-run in
    which every job succeeded."""
    sweep = tmp_path / "sweep"
    nan_decoder = "model._target_=tests.reliability.plugins.NaNDecoderBurgess"
    failed = cli(
        "train.py",
        "-m",
        nan_decoder,
        "+model.nan_after=0",
        *TINY,
        f"hydra.sweep.dir={sweep}",
        logs=tmp_path / "a",
    )
    assert failed.returncode != 0 and (sweep / "failures.json").is_file()
    done = cli(
        "train.py",
        "-m",
        nan_decoder,
        "+model.nan_after=1000",
        *TINY,
        "threads=1",
        "trainer.max_steps=1",
        "test=false",
        f"hydra.sweep.dir={sweep}",
        logs=tmp_path / "b",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (sweep / "failures.json").exists()
    # jobs.json: the jobs of both launches, each under its run folder's name, with its cell
    plan = read_plan(sweep)
    assert plan is not None and sorted(run.folder for run in plan) == [p.name for p in run_folders(sweep)]
    assert [(run.divergence, run.alpha, run.seed, run.likelihood) for run in plan] == [
        ("gjs", 0.5, 1234, "gaussian")
    ] * 2


@pytest.mark.slow
def test_sweep_with_a_failing_job_finishes_the_others_and_reports_it(
    background: dict[str, tuple[Launched, Path]],
) -> None:
    process, sweep = background["sweep"]
    result = process.result()
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    error = "non-finite loss at step 0 (epoch 0) in the reconstruction term"
    report = result.stderr[result.stderr.index("1 of 2 jobs failed") :].splitlines()
    assert report[0] == f"1 of 2 jobs failed (the others finished; details in {sweep / 'failures.json'}):"
    assert report[1].startswith("  model._target_=") and "+model.nan_after=0 " in report[1]
    assert error in report[1]
    (good,) = sweep.glob("*model.nan_after=100*")
    assert RunDir.at(good).status == "completed" and RunDir.at(good).results["steps"] == 4
    (failure,) = json.loads((sweep / "failures.json").read_text())
    assert "+model.nan_after=0" in failure["overrides"] and error in failure["error"]


# ------------------------------------------------------------------------ W&B without network


def test_wandb_auto_mode_decides_without_waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("NETRC", str(tmp_path / "no.netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))

    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("no key: nothing to connect to")

    with monkeypatch.context() as patch:  # no key at all: offline without touching the network
        patch.setattr(socket, "create_connection", no_connection)
        assert resolve_wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    assert resolve_wandb_mode("auto") == "offline"  # a key but no server
    assert time.monotonic() - started < 5
    with socket.socket() as server:  # a key and a server: online (the URL's port is the one tried)
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert resolve_wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled" and resolve_wandb_mode("offline") == "offline"


@pytest.mark.slow
def test_wandb_with_a_key_but_no_network_trains_offline_and_can_be_synced_later(
    background: dict[str, tuple[Launched, Path]],
) -> None:
    process, run_dir = background["wandb"]
    result = process.result(timeout=300)
    without_wandb, _ = background["csv"]
    assert without_wandb.result(timeout=300).returncode == 0
    # W&B's own retries would stall 90 s or more; the same run with CSV logging, started at the
    # same time, is the yardstick (a busy machine slows both)
    assert process.seconds < without_wandb.seconds + 60, (process.seconds, without_wandb.seconds)
    assert result.returncode == 0, result.stderr[-3000:]
    assert RunDir.at(run_dir).status == "completed"
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    assert run_summary(next(offline.glob("run-*.wandb")))["name"] == "mnist-gjs-a0.5"  # the default run
    assert "W&B: no API key or no network, logging offline" in result.stdout + result.stderr
    # The documented command (docs/reliability.md) recognises the folder; --dry-run needs no network.
    sync = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run", str(offline)],
        cwd=run_dir,
        env={**os.environ, "HOME": str(run_dir.parent / "home"), "WANDB_MODE": "offline"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sync.returncode == 0 and "Would sync 1 run" in sync.stdout + sync.stderr, sync.stderr


# -------------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path: Path, data_dir: Path) -> None:
    for name, seed in (("a", 1234), ("b", 1234), ("c", 7)):
        train_tiny(tmp_path / name, ["threads=1", f"seed={seed}"], data_dir=data_dir)
    a, b, c = (_rows(tmp_path / name / "metrics.csv") for name in "abc")
    assert a == b
    assert [row["epoch"] for row in a] == [row["epoch"] for row in c]
    assert a[0]["train/loss"] != c[0]["train/loss"] and a[-1]["test/rec"] != c[-1]["test/rec"]
