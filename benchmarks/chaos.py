"""Chaos: run a short sweep of tiny runs while killing it, corrupting its files and filling its
disk, each fault injected into a run that is still training, then check every run folder against
the promises of docs/reliability.md.

    python benchmarks/chaos.py                       # 4 runs, 10 faults, about 10 minutes on 2 busy cores
    python benchmarks/chaos.py --runs 3 --faults 6 --seed 1 --out /tmp/chaos

Each round starts the same sweep (``python train.py -m lam=1,...,N``: runs that differ in λ only,
each step slowed by ``tests.reliability.plugins.SlowKLqp`` so that a fault can land inside a
run) with, at random, the basic launcher or the fused one (``hydra/launcher=fused``: the runs
train as fused groups, in joblib workers with its defaults, or as one group in the sweep's
process with ``n_jobs=1``), and injects one fault:

* ``sigterm`` / ``sigkill``: once a run chosen at random among the unfinished ones is training
  (its ``status.json`` says ``running`` for a live process, and it has finished 0 or 1 epochs,
  chosen at random, with a whole epoch to go), the sweep process is signalled;
  a SIGTERM must end it with exit code 143, ``failures.json`` and one line per job, and the run
  it hit must say ``stopped by SIGTERM at step ...``;
* ``full``: the sweep folder lies on a real small file system (a tmpfs, where the machine lets
  root mount one; otherwise ``os.fsync`` raising ENOSPC, reported as ``simulated``); once a run
  is training, the file system is filled to the last byte; the job must fail with one line
  ``cannot write <path>: no space left on device``, no traceback; then the filler is removed;
* ``corrupt``: before the round, a random file of a random unfinished run (config.yaml,
  status.json or metrics.csv) is overwritten with garbage; the round must fail that job with one
  line naming the file (``... is corrupt``), after which the file is deleted as the line says.

A fault *landed* when the run it was aimed at did not complete in that round (and, for SIGTERM,
says so in its status); a fault that finds no run to hit is a violation. When fewer than two runs
of the sweep are left to train, the next round starts a new sweep folder (a generation), so that
there are always runs, and fused groups of several members, to hit.

Then every generation's sweep runs once more without faults, and every run is checked:
``status.json`` is ``completed``, ``results.json`` has the planned steps and epochs, ``last.ckpt``
loads and is at the last step, ``metrics.csv`` has every epoch and the test row with finite
losses, every file under its final name parses, no temporary file is left, and the test metrics
equal those of an uninterrupted run with the same config (resuming is exact on CPU, fused or
not). ``lost`` counts runs that break any of these: it must be 0.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.reliability.helpers import mount_tmpfs, unmount  # noqa: E402
from tests.reliability.plugins import DELAY_ENV  # noqa: E402

EPOCHS, BATCHES = 3, 4
TINY = [
    "logger=csv",
    "threads=1",
    "trainer.max_steps=-1",
    f"trainer.max_epochs={EPOCHS}",
    f"trainer.limit_train_batches={BATCHES}",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "dataset.eval_batch_size=64",
    "images_every_n_epochs=null",
    "divergence._target_=tests.reliability.plugins.SlowKLqp",
]
#: Seconds each training step sleeps (per run; a fused group's members one after the other).
STEP_DELAY = "0.15"
FAULTS = ("sigterm", "sigkill", "corrupt", "full")
LAUNCHERS = {
    "basic": [],
    "fused": ["hydra/launcher=fused"],  # its defaults: a worker per core (on 2 cores, groups of 2)
    "fused-in-process": ["hydra/launcher=fused", "hydra.launcher.n_jobs=1"],  # one group, no worker
}


def full_disk_child(after: int, args: list[str]) -> None:
    """Run train.py ``args`` in this process with a disk that is full after ``after`` fsyncs (the
    ``full`` fault where no real small file system can be mounted)."""
    real_fsync, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    os.fsync = fsync  # type: ignore[assignment]
    sys.argv = ["train.py", *args]
    import runpy

    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


def sweep_command(sweep: Path, runs: int, launcher: str, fault_after: int | None = None) -> list[str]:
    lams = ",".join(str(lam) for lam in range(1, runs + 1))
    args = ["-m", *TINY, f"lam={lams}", *LAUNCHERS[launcher], f"hydra.sweep.dir={sweep}"]
    if fault_after is None:
        return [sys.executable, "train.py", *args]
    return [sys.executable, __file__, "--full-disk-child", str(fault_after), "--", *args]


def run_folders(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and "lam=" in p.name) if sweep.is_dir() else []


def run_name(folder: Path) -> str:
    """``sweep0/lam=2``: a run folder by its generation and its λ."""
    match = re.search(r"lam=[^,]+", folder.name)
    return f"{folder.parent.name}/{match.group(0) if match else folder.name}"


def read_status(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def epochs_done(folder: Path) -> int:
    try:
        with (folder / "metrics.csv").open(newline="") as handle:
            return sum(1 for row in csv.DictReader(handle) if row.get("train/loss"))
    except (OSError, ValueError, csv.Error):
        return 0


def alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def training(sweep: Path, min_epochs: int) -> list[Path]:
    """The runs of ``sweep`` that a live process trains now, with ``min_epochs`` epochs done and
    a whole epoch still to go (a fault aimed at it cannot miss by landing after its end)."""
    return [
        folder
        for folder in run_folders(sweep)
        if read_status(folder).get("status") == "running"
        and alive(read_status(folder).get("pid"))
        and min_epochs <= epochs_done(folder) < EPOCHS - 1
    ]


Injector = Callable[[subprocess.Popen[bytes]], list[Path]]


def run_round(command: list[str], log: Path, inject: Injector | None = None) -> tuple[int, str, list[Path]]:
    """Run ``command`` from the project root; ``inject(process)`` is polled while it runs until it
    injects its fault (it returns the runs the fault was aimed at). Returns the exit code, the
    output and those runs."""
    targets: list[Path] = []
    with log.open("w") as handle:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, DELAY_ENV: STEP_DELAY, "WANDB_MODE": "offline"},
        )
        while inject is not None and not targets and process.poll() is None:
            targets = inject(process)
            time.sleep(0.05)
        process.wait(timeout=900)
    return process.returncode, log.read_text(), targets


def targets_left(sweep: Path, runs: int) -> list[int]:
    """The λ of the runs of ``sweep`` a fault can still hit: not completed, a whole epoch to go."""
    folders = {run_name(folder): folder for folder in run_folders(sweep)}
    left = []
    for lam in range(1, runs + 1):
        folder = folders.get(f"{sweep.name}/lam={lam}")
        if folder is None or (
            read_status(folder).get("status") != "completed" and epochs_done(folder) < EPOCHS - 1
        ):
            left.append(lam)
    return left


def when_training(
    sweep: Path, runs: int, rng: random.Random, fault: Callable[[subprocess.Popen[bytes]], None]
) -> Injector:
    """An injector that applies ``fault`` once a run of ``sweep`` chosen at random among those a
    fault can hit (:func:`targets_left`) trains, with 0 or 1 epochs done (at random, at most what
    it has), after a random moment (inside a step, or inside a write); the runs training then
    are its targets."""
    lam = rng.choice(targets_left(sweep, runs) or [1])
    chosen = next((f for f in run_folders(sweep) if run_name(f) == f"{sweep.name}/lam={lam}"), None)
    min_epochs = rng.choice([0, 1]) if chosen is None or epochs_done(chosen) == 0 else 1
    mark = f"lam={lam},"

    def inject(process: subprocess.Popen[bytes]) -> list[Path]:
        hit = training(sweep, min_epochs)
        if any(mark in folder.name for folder in hit):
            time.sleep(rng.uniform(0, 0.3))
            fault(process)
            return hit
        return []

    return inject


def fill(disk: Path) -> Path:
    """Fill the file system of ``disk`` to the last byte with a filler file; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (2**20, 4096, 1):  # unbuffered: every byte written, or refused
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    return filler


def corrupt_one(sweep: Path, rng: random.Random) -> Path | None:
    """Overwrite a random file of a random unfinished run with garbage; the file, or None."""
    candidates = []
    for folder in run_folders(sweep):
        if read_status(folder).get("status") == "completed":
            continue
        # config.yaml is read only to resume from a checkpoint; without one it is rewritten
        names = ["status.json", "metrics.csv"] + (
            ["config.yaml"] if (folder / "checkpoints/last.ckpt").is_file() else []
        )
        candidates += [folder / name for name in names if (folder / name).is_file()]
    if not candidates:
        return None
    target = rng.choice(candidates)
    target.write_bytes(b'{"broken": [\x00\xff ' + bytes(rng.randrange(256) for _ in range(20)))
    return target


def error_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "Error: " in line]


def check_run(folder: Path, reference: dict[str, Any] | None, metrics_destroyed: bool) -> list[str]:
    """What is wrong with a finished run folder (empty: nothing). ``metrics_destroyed``: chaos
    overwrote its metrics.csv (deleted after the platform named it), so the rows of the epochs
    before that are gone by the injection itself, not by the platform: they are not counted."""
    import torch
    from omegaconf import OmegaConf

    problems = []
    try:
        status = json.loads((folder / "status.json").read_text())
        results = json.loads((folder / "results.json").read_text())
        OmegaConf.load(folder / "config.yaml")
    except Exception as error:  # JSON, YAML or file errors: a record that does not parse
        return [f"unreadable record: {error}"]
    if status.get("status") != "completed":
        problems.append(f"status {status}")
    if (results.get("steps"), results.get("epochs")) != (EPOCHS * BATCHES, EPOCHS):
        problems.append(f"steps/epochs {results.get('steps')}/{results.get('epochs')}")
    try:
        last = torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        if last["global_step"] != EPOCHS * BATCHES:
            problems.append(f"last.ckpt at step {last['global_step']}")
    except Exception as error:  # whatever torch raises for an unreadable checkpoint
        problems.append(f"last.ckpt unreadable: {error}")
    with (folder / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = sorted(int(r["epoch"]) for r in rows if r.get("train/loss"))
    if epochs != list(range(EPOCHS)) and not (
        metrics_destroyed and epochs and epochs == list(range(epochs[0], EPOCHS))
    ):
        problems.append(f"metrics.csv epochs {epochs}")
    if not all(math.isfinite(float(r["train/loss"])) for r in rows if r.get("train/loss")):
        problems.append("non-finite loss in metrics.csv")
    if not any(r.get("test/rec") for r in rows):
        problems.append("no test row in metrics.csv")
    if reference is not None and results.get("test/rec") != reference.get("test/rec"):
        problems.append(f"test/rec {results.get('test/rec')} != uninterrupted {reference.get('test/rec')}")
    return problems


class Chaos:
    """The rounds of one chaos run: its sweep folders (generations), its record of faults."""

    def __init__(self, out: Path, runs: int, seed: int) -> None:
        self.out, self.runs, self.rng = out, runs, random.Random(seed)
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.disk = out / "disk"
        refused = mount_tmpfs(self.disk, "512m")
        self.real_disk = refused is None
        if refused is not None:
            print(f"no real small file system ({refused}): the full disk is simulated", flush=True)
            self.disk.mkdir(exist_ok=True)
        self.generation = 0
        self.injected: Counter[str] = Counter()
        self.landed: list[str] = []
        self.destroyed: set[str] = set()  # runs whose metrics.csv chaos overwrote
        self.violations: list[str] = []

    @property
    def sweep(self) -> Path:
        return self.disk / f"sweep{self.generation}"

    def next_sweep_if_done(self) -> None:
        """A new sweep folder once fewer than two runs are left for a fault to hit (so that a
        fused group of several members is there to be hit); the old one is completed at the end."""
        if len(targets_left(self.sweep, self.runs)) < min(2, self.runs):
            self.generation += 1

    def released(self, number: int, timeout: float = 120) -> None:
        """Wait until no process holds a run folder of the sweep: the workers of a killed sweep
        stop with it (a violation if one still trains after ``timeout`` seconds)."""
        from vae_gjs.runlock import holder

        deadline = time.monotonic() + timeout
        while any(holder(folder) for folder in run_folders(self.sweep)):
            if time.monotonic() > deadline:
                self.violations.append(f"round {number}: a worker outlived its sweep by {timeout:g} s")
                return
            time.sleep(0.2)

    def round(self, number: int, fault: str) -> None:
        self.next_sweep_if_done()
        launcher = self.rng.choice(list(LAUNCHERS))
        log = self.logs / f"round{number:02d}-{fault}-{launcher}.txt"
        if fault == "corrupt":
            target = corrupt_one(self.sweep, self.rng)
            if target is None:
                fault = "sigkill"  # nothing unfinished to corrupt yet
            else:
                code, output, _ = run_round(sweep_command(self.sweep, self.runs, launcher), log)
                named = [line for line in error_lines(output) if f"{target} is corrupt" in line]
                if code == 0 or not named:
                    self.violations.append(f"round {number}: corrupt {target} not named (exit {code})")
                else:
                    kind = named[0].split(" is corrupt (")[1].split(":")[0]
                    self.landed.append(
                        f"round {number} ({launcher}): corrupt {target.name} of {run_name(target.parent)}, "
                        f"named: 'Error: <run>/{target.name} is corrupt ({kind}: ...); delete it ...'"
                    )
                target.unlink()  # what the line says to do
                if target.name == "metrics.csv":
                    self.destroyed.add(f"{target.parent.parent.name}/{target.parent.name}")
                self.injected[fault] += 1
                where = f"{target.name} of {run_name(target.parent)}"
                print(f"round {number}: corrupt {where} ({launcher}) -> exit {code}", flush=True)
                return
        if fault == "full":
            code, output, targets = self.full_disk_round(launcher, log)
            full = [line for line in error_lines(output) if "no space left on device" in line]
            if code == 0 or not full:
                self.violations.append(f"round {number}: full disk not reported in one line (exit {code})")
            if "Traceback" in output:
                self.violations.append(f"round {number}: traceback with a full disk")
        else:
            sig = signal.SIGTERM if fault == "sigterm" else signal.SIGKILL
            inject = when_training(self.sweep, self.runs, self.rng, lambda process: process.send_signal(sig))
            code, output, targets = run_round(sweep_command(self.sweep, self.runs, launcher), log, inject)
            if fault == "sigterm":
                if code != 143:
                    self.violations.append(f"round {number}: SIGTERM gave exit code {code}")
                if not (self.sweep / "failures.json").is_file():
                    self.violations.append(f"round {number}: SIGTERM without failures.json")
                if "Traceback" in output:
                    self.violations.append(f"round {number}: traceback after SIGTERM")
                for target in targets:
                    error = read_status(target).get("error", "")
                    if not error.startswith("stopped by SIGTERM at step "):
                        self.violations.append(f"round {number}: {target.name} says {error!r} after SIGTERM")
        self.released(number)
        self.record_landing(number, fault, launcher, targets)
        self.injected[fault] += 1
        print(f"round {number}: {fault} ({launcher}) -> exit {code}", flush=True)

    def full_disk_round(self, launcher: str, log: Path) -> tuple[int, str, list[Path]]:
        """The sweep while its file system fills up under a training run (or, simulated, while
        fsync refuses after a random number of writes)."""
        if not self.real_disk:
            command = sweep_command(self.sweep, self.runs, launcher, self.rng.randrange(2, 12))
            return run_round(command, log)
        fillers: list[Path] = []
        inject = when_training(
            self.sweep, self.runs, self.rng, lambda process: fillers.append(fill(self.disk))
        )
        try:
            return run_round(sweep_command(self.sweep, self.runs, launcher), log, inject)
        finally:
            for filler in fillers:
                filler.unlink()

    def record_landing(self, number: int, fault: str, launcher: str, targets: list[Path]) -> None:
        """A fault landed when the runs it was aimed at did not complete in the round."""
        if not targets and not (fault == "full" and not self.real_disk):
            self.violations.append(f"round {number}: the {fault} found no run training")
            return
        unfinished = [t for t in targets if read_status(t).get("status") != "completed"]
        if targets and not unfinished:
            self.violations.append(f"round {number}: the {fault} did not land (its runs completed)")
            return
        where = ", ".join(run_name(t) for t in unfinished)
        self.landed.append(
            f"round {number} ({launcher}): {fault} while training {where or 'a run (simulated disk)'}"
        )

    def finish(self, started: float) -> dict[str, Any]:
        sweeps = sorted(p for p in self.disk.iterdir() if p.is_dir() and p.name.startswith("sweep"))
        reference_dir = self.out / "reference"
        if len(run_folders(reference_dir)) != self.runs:
            run_round(sweep_command(reference_dir, self.runs, "basic"), self.logs / "reference.txt")
        references = {
            p.name: json.loads((p / "results.json").read_text()) for p in run_folders(reference_dir)
        }
        checked: dict[str, list[str]] = {}
        for sweep in sweeps:
            code, output, _ = run_round(
                sweep_command(sweep, self.runs, "basic"), self.logs / f"final-{sweep.name}.txt"
            )
            if code != 0:
                self.violations.append(
                    f"the final sweep of {sweep.name} exited {code}: {error_lines(output)[:3]}"
                )
            for folder in run_folders(sweep):
                name = f"{sweep.name}/{folder.name}"
                checked[name] = check_run(folder, references.get(folder.name), name in self.destroyed)
        lost = {name: problems for name, problems in checked.items() if problems}
        leftovers = sorted(str(p.relative_to(self.disk)) for sweep in sweeps for p in sweep.rglob(".*.tmp"))
        return {
            "faults_injected": sum(self.injected.values()),
            "by_kind": dict(self.injected),
            "full_disk": "real (a 512 MB tmpfs filled to the last byte)" if self.real_disk else "simulated",
            "landed": self.landed,
            "runs": len(checked),
            "generations": len(sweeps),
            "lost": len(lost),
            "lost_details": lost,
            "metrics_csv_overwritten_by_chaos": sorted(self.destroyed),
            "violations": self.violations,
            "temporary_files_left": leftovers,
            "seconds": round(time.perf_counter() - started, 1),
        }

    def close(self) -> None:
        if self.real_disk:
            unmount(self.disk)


def chaos(out: Path, runs: int, faults: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    plan = [FAULTS[i % len(FAULTS)] for i in range(faults)]
    state = Chaos(out, runs, seed)
    state.rng.shuffle(plan)
    try:
        for number, fault in enumerate(plan):
            state.round(number, fault)
        return state.finish(started)
    finally:
        state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--faults", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(f"/tmp/vae-gjs-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    )
    parser.add_argument("--full-disk-child", type=int, default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.full_disk_child is not None:
        full_disk_child(args.full_disk_child, rest[1:] if rest[:1] == ["--"] else rest)
        return
    summary = chaos(args.out, args.runs, args.faults, args.seed)
    print(json.dumps(summary, indent=2))
    sys.exit(0 if summary["lost"] == 0 and not summary["violations"] else 1)


if __name__ == "__main__":
    main()
