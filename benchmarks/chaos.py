"""Chaos: run a short sweep of tiny runs while killing it, corrupting its files and filling its
disk, then check every run folder against the promises of docs/reliability.md.

    python benchmarks/chaos.py                       # 4 runs, 10 faults, about 10 minutes on 2 busy cores
    python benchmarks/chaos.py --runs 3 --faults 6 --seed 1 --out /tmp/chaos

Each round starts the same sweep (``python train.py -m seed=1,...,N``, basic launcher, the same
sweep folder) and injects one fault:

* ``sigterm`` / ``sigkill``: the sweep process is signalled at a random time; a SIGTERM must end
  it with exit code 143, failures.json and one line per job;
* ``corrupt``: before the round, a random file of a random unfinished run (config.yaml,
  status.json or metrics.csv) is overwritten with garbage; the round must fail that job with one
  line naming the file (``... is corrupt``), after which the file is deleted as the line says;
* ``full``: the round runs with a disk that refuses every write after a random number of them
  (``os.fsync`` raising ENOSPC, in the sweep process); the job must fail with one line
  ``cannot write <path>: no space left on device``.

Then the sweep runs once more without faults, and every run is checked: ``status.json`` is
``completed``, ``results.json`` has the planned steps and epochs, ``last.ckpt`` loads and is at the
last step, ``metrics.csv`` has every epoch and the test row with finite losses, every file under
its final name parses, and the test metrics equal those of an uninterrupted run with the same seed
(resuming is exact on CPU). ``lost`` counts runs that break any of these: it must be 0.
"""

from __future__ import annotations

import argparse
import csv
import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
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
]
FAULTS = ("sigterm", "sigkill", "corrupt", "full")


def full_disk_child(after: int, args: list[str]) -> None:
    """Run train.py ``args`` in this process with a disk that is full after ``after`` fsyncs."""
    real_fsync, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    os.fsync = fsync  # type: ignore[assignment]
    sys.argv = ["train.py", *args]
    sys.path.insert(0, str(ROOT))
    import runpy

    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


def sweep_command(out: Path, runs: int, fault_after: int | None = None) -> list[str]:
    args = ["-m", *TINY, f"seed={','.join(str(s) for s in range(1, runs + 1))}", f"hydra.sweep.dir={out}"]
    if fault_after is None:
        return [sys.executable, "train.py", *args]
    return [sys.executable, __file__, "--full-disk-child", str(fault_after), "--", *args]


def run_round(command: list[str], log: Path, kill: tuple[int, float] | None = None) -> tuple[int, str]:
    """Run ``command`` from the project root; with ``kill = (signal, seconds)`` signal it then."""
    with log.open("w") as handle:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        if kill is not None:
            try:
                process.wait(timeout=kill[1])
            except subprocess.TimeoutExpired:
                process.send_signal(kill[0])
        process.wait(timeout=600)
    return process.returncode, log.read_text()


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir() and "seed=" in p.name) if out.is_dir() else []


def corrupt_one(out: Path, rng: random.Random) -> Path | None:
    """Overwrite a random file of a random unfinished run with garbage; the file, or None."""
    candidates = []
    for folder in run_folders(out):
        status = folder / "status.json"
        if status.is_file() and '"completed"' in status.read_text(errors="ignore"):
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


def chaos(out: Path, runs: int, faults: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    sweep, logs = out / "sweep", out / "logs"
    logs.mkdir(exist_ok=True)
    injected: Counter[str] = Counter()
    destroyed: set[str] = set()  # runs whose metrics.csv chaos overwrote
    violations: list[str] = []
    started = time.perf_counter()
    plan = [FAULTS[i % len(FAULTS)] for i in range(faults)]
    rng.shuffle(plan)
    for number, fault in enumerate(plan):
        log = logs / f"round{number:02d}-{fault}.txt"
        if fault == "corrupt":
            target = corrupt_one(sweep, rng)
            if target is None:
                fault = "sigkill"  # nothing unfinished to corrupt yet
            else:
                code, output = run_round(sweep_command(sweep, runs), log)
                named = [line for line in error_lines(output) if f"{target} is corrupt" in line]
                if code == 0 or not named:
                    violations.append(f"round {number}: corrupt {target} not named (exit {code})")
                target.unlink()  # what the line says to do
                if target.name == "metrics.csv":
                    destroyed.add(target.parent.name)
                injected[fault] += 1
                print(f"round {number}: corrupt {target.relative_to(out)} -> exit {code}", flush=True)
                continue
        if fault == "full":
            code, output = run_round(sweep_command(sweep, runs, fault_after=rng.randrange(2, 12)), log)
            full = [line for line in error_lines(output) if "no space left on device" in line]
            if code != 0 and not full:
                violations.append(f"round {number}: full disk not reported in one line (exit {code})")
            if "Traceback" in output:
                violations.append(f"round {number}: traceback with a full disk")
        else:
            sig = signal.SIGTERM if fault == "sigterm" else signal.SIGKILL
            code, output = run_round(sweep_command(sweep, runs), log, kill=(sig, rng.uniform(4, 25)))
            if fault == "sigterm" and code not in (0, 143):
                violations.append(f"round {number}: SIGTERM gave exit code {code}")
            if fault == "sigterm" and code == 143 and not (sweep / "failures.json").is_file():
                violations.append(f"round {number}: SIGTERM without failures.json")
            if fault == "sigterm" and "Traceback" in output:
                violations.append(f"round {number}: traceback after SIGTERM")
        injected[fault] += 1
        print(f"round {number}: {fault} -> exit {code}", flush=True)

    code, output = run_round(sweep_command(sweep, runs), logs / "final.txt")
    if code != 0:
        violations.append(f"the final sweep exited {code}: {error_lines(output)[:3]}")
    reference_dir = out / "reference"
    if not run_folders(reference_dir) or code != 0:
        run_round(sweep_command(reference_dir, runs), logs / "reference.txt")
    references = {p.name: json.loads((p / "results.json").read_text()) for p in run_folders(reference_dir)}
    checked = {p.name: check_run(p, references.get(p.name), p.name in destroyed) for p in run_folders(sweep)}
    lost = {name: problems for name, problems in checked.items() if problems}
    leftovers = sorted(str(p.relative_to(sweep)) for p in sweep.rglob(".*.tmp"))
    return {
        "faults_injected": sum(injected.values()),
        "by_kind": dict(injected),
        "runs": len(checked),
        "lost": len(lost),
        "lost_details": lost,
        "metrics_csv_overwritten_by_chaos": sorted(destroyed),
        "violations": violations,
        "temporary_files_left": leftovers,
        "seconds": round(time.perf_counter() - started, 1),
    }


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
