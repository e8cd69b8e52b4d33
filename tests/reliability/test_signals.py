"""Signals: SIGTERM and Ctrl-C end a run with 128 + the signal's number, a status that says why
and which checkpoint is kept; a sweep writes its summary and failures.json before it exits; the
workers of ``hydra/launcher=cpu_pair`` stop with the sweep (SIGTERM and SIGKILL); under submitit
a preempted job is resubmitted into the same folder. See docs/reliability.md."""

from __future__ import annotations

import json
import os
import pickle
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import CONF, TINY
from tests.reliability.helpers import (
    SLOW,
    check_stopped,
    epochs_done,
    error_lines,
    launch,
    loky_workers,
    wait_for,
)
from tests.reliability.plugins import DELAY_ENV
from vae_gjs import signals

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT (Ctrl-C)")]
)
def test_signal_stops_a_run_with_128_plus_n_and_keeps_last_ckpt(
    sig: int, code: int, name: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    run = launch("train.py", *TINY, *SLOW, f"hydra.run.dir={run_dir}", logs=tmp_path, env={DELAY_ENV: "0.3"})
    wait_for(lambda: epochs_done(run_dir / "metrics.csv") >= 1, run)
    run.process.send_signal(sig)
    result = run.result(timeout=120)
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    error = check_stopped(run_dir, name)
    assert error_lines(result.stderr) == [f"Error: {error}"]
    assert not (run_dir / "results.json").exists()


def test_sigterm_stops_a_basic_sweep_with_its_summary_and_failures_json(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run = launch(
        "train.py",
        "-m",
        *TINY,
        *SLOW,
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
        logs=tmp_path,
        env={DELAY_ENV: "0.3"},
    )
    wait_for(lambda: any(epochs_done(m) >= 1 for m in sweep.glob("*seed=1*/metrics.csv")), run)
    run.process.send_signal(signal.SIGTERM)
    result = run.result(timeout=120)
    assert result.returncode == 143, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert (
        f"Sweep stopped by SIGTERM: 2 of 2 jobs did not complete (details in {sweep / 'failures.json'}"
        in (result.stderr)
    )
    first, second = json.loads((sweep / "failures.json").read_text())
    (stopped,) = sweep.glob("*seed=1*")
    assert first["error"] == f"Error: {check_stopped(stopped)}" and "seed=1" in first["overrides"]
    assert (
        second["error"] == "Error: not run: stopped by SIGTERM before it started"
        and "seed=2" in second["overrides"]
    )
    assert not list(sweep.glob("*seed=2*"))  # not run: no folder left behind
    # nor launched: Hydra's launcher composed and logged each job the signal left (0.4 s a job)
    assert "#0 : " in result.stdout and "#1 : " not in result.stdout + result.stderr


def test_a_job_in_the_process_of_a_forwarding_sweep_stops_at_once(tmp_path: Path) -> None:
    """The fused launcher with one worker runs a job in the sweep's own process while the sweep
    forwards signals to workers: a SIGTERM in the job's set-up (outside Lightning) used to be
    forwarded to nobody and the job trained to the end (found by benchmarks/chaos.py); it stops
    the job at once, as in a basic sweep, and the sweep's wait forwards again afterwards."""
    script = (
        "import os, signal, time\n"
        "from vae_gjs import signals\n"
        "with signals.stopping(forward=True):\n"
        "    try:\n"
        "        with signals.stopping():\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "            time.sleep(5)\n"
        "        print('trained to the end')\n"
        "    except signals.Terminated as stop:\n"
        "        print('stopped', stop.code, 'forwarding again:', signals._forwarding.is_set())\n"
    )
    result = launch("-c", script, logs=tmp_path).result(timeout=60)
    assert result.stdout.splitlines() == ["stopped 143 forwarding again: True"], result.stderr


def test_sigterm_stops_an_optuna_search_with_its_summary_and_failures_json(tmp_path: Path) -> None:
    """``hparams_search=optuna``: a SIGTERM during a trial used to exit 1 (Hydra's wrapper of the
    trial's error) without ``failures.json``."""
    sweep = tmp_path / "sweep"
    run = launch(
        "train.py",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=3",
        *TINY,
        *SLOW,
        "divergence=gjs",  # a search over α (kl_qp has none)
        "divergence._target_=tests.reliability.plugins.SlowGJS",
        f"hydra.sweep.dir={sweep}",
        logs=tmp_path,
        env={DELAY_ENV: "0.3"},
    )
    wait_for(lambda: any(epochs_done(m) >= 1 for m in sweep.glob("*/metrics.csv")), run)
    run.process.send_signal(signal.SIGTERM)
    result = run.result(timeout=120)
    assert result.returncode == 143, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert "Sweep stopped by SIGTERM: 1 of 1 jobs did not complete" in result.stderr
    (record,) = json.loads((sweep / "failures.json").read_text())
    (trial,) = (p for p in sweep.iterdir() if p.is_dir())
    assert record["error"] == f"Error: {check_stopped(trial)}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_cpu_pair_workers_stop_with_the_sweep(sig: int, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    run = launch(
        "train.py",
        "-m",
        "hydra/launcher=cpu_pair",
        *TINY,
        *SLOW,
        "trainer.max_epochs=30",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
        logs=tmp_path,
        env={DELAY_ENV: "0.3"},
    )
    wait_for(lambda: sum(epochs_done(m) >= 1 for m in sweep.glob("*/metrics.csv")) == 2, run, timeout=300)
    children = psutil.Process(run.process.pid).children()
    workers = loky_workers(psutil.Process(run.process.pid))
    assert len(workers) == 2 and all(w.ppid() == run.process.pid for w in workers)
    run.process.send_signal(sig)
    result = run.result(timeout=120)
    _, alive = psutil.wait_procs(children, timeout=60)  # workers and joblib's resource trackers
    assert not alive, [p.cmdline() for p in alive]
    for folder in sweep.glob("*seed=*"):
        check_stopped(folder)  # each worker's job stopped at a step and said so
    if sig == signal.SIGTERM:
        assert result.returncode == 143, result.stderr[-3000:]
        records = json.loads((sweep / "failures.json").read_text())
        assert len(records) == 2 and all("stopped by SIGTERM" in r["error"] for r in records)
    else:
        assert result.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------- SLURM (submitit)


def test_submitit_checkpoint_resubmits_the_same_job_into_the_same_folder(tmp_path: Path) -> None:
    """What submitit does on SLURM's preemption/timeout signal: call the launcher's checkpoint(),
    pickle the DelayedSubmission it returns and requeue it. The requeued job must be the same job
    (same overrides and number) and resolve to the same run folder, although ``${now:}`` in the
    sweep folder would give another time in the new process."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from submitit.helpers import DelayedSubmission

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = ["hydra/launcher=submitit_slurm", f"hydra.sweep.dir={tmp_path}/${{now:%H-%M-%S-%f}}"]
        config = compose("train", overrides=overrides, return_hydra_config=True)
    sweep_dir = str(config.hydra.sweep.dir)  # resolved once by the sweep, as launch() does
    # imported after Hydra's plugin discovery, which imports the plugin modules afresh
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    launcher = SlurmLauncher(**{"submitit_folder": str(tmp_path / ".submitit")})
    launcher.config = config  # what setup() keeps
    args = (["seed=2", "alpha=0.3"], "hydra.sweep.dir", 3, "job_id_for_3", {})
    delayed = launcher.checkpoint(*args)
    assert isinstance(delayed, DelayedSubmission) and delayed.function is launcher
    assert delayed.args == args and delayed.kwargs == {}
    time.sleep(0.01)  # ${now:} would now give another folder if it were resolved again
    requeued = pickle.loads(pickle.dumps(delayed))  # what the requeued job unpickles
    assert requeued.args == args
    assert str(requeued.function.config.hydra.sweep.dir) == sweep_dir


def test_under_submitit_lightning_does_not_requeue_a_second_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from vae_gjs.tasks.train import slurm_plugins

    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert slurm_plugins() == []
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    (environment,) = slurm_plugins()
    assert isinstance(environment, SLURMEnvironment) and environment.auto_requeue is False
    assert signals.received() is None  # nothing received in this process
    assert signals.describe(SystemExit(-1)).startswith("stopped by SLURM (preempted or out of time); ")
    monkeypatch.delenv("SUBMITIT_EXECUTOR")
    assert signals.describe(SystemExit(-1)) == "SystemExit: -1"
    assert os.environ.get(signals.SWEEP_PID_ENV) in (None, str(os.getpid()))
