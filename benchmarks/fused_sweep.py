"""Fused against separate on real runs: the issue's CPU measure, end to end through ``train.py``.

    python benchmarks/fused_sweep.py                 # one MNIST epoch a run (about 10 min on 2 cores)
    python benchmarks/fused_sweep.py --batches 200   # 200 steps a run instead of an epoch

Runs the 9-α sweep ``python train.py -m divergence=gjs 'alpha=range(0.1,1,0.1)' dataset=mnist
budget=cpu`` three times in a row: separately (``budget=cpu``'s own launcher, ``cpu_pair``: two
one-threaded runs side by side), fused with the launcher's defaults (``hydra/launcher=fused`` and
no option: on a 2-core CPU it chooses two one-threaded workers, groups of 5 and 4) and
separately again, so that a drift of the machine's speed shows as a difference between the two
separate passes. Each run trains for one epoch (or
``--batches`` steps), with ``test=false`` and CSV logging, and reports its training time in
``metrics.csv`` (``time/epoch_s``: Lightning's loop with its logging and checkpointing for a
separate run, the group's loop for a fused member). Seconds per model-epoch: a separate run's
``time/epoch_s``; a fused group's divided by its members. The ratio (separate / fused, medians)
is the model-images per second of the fused way over the separate way's.

Prints one JSON summary and writes it to ``benchmarks/results/<name>.json`` (atomically); the
run folders go to a temporary directory (``--keep DIR`` keeps them there instead).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from benchmarks.run import cpu_model  # noqa: E402
from tests.conftest import DATA_DIR  # noqa: E402

from vae_gjs.io import write_json  # noqa: E402

SWEEP = ["divergence=gjs", "alpha=range(0.1,1,0.1)", "dataset=mnist", "budget=cpu"]
WAYS = {"separate": [], "fused": ["hydra/launcher=fused"]}


def sweep(way: str, folder: Path, batches: int | None) -> float:
    """Run the sweep ``way`` into ``folder``; its wall time in seconds."""
    limit = [f"trainer.limit_train_batches={batches}"] if batches else []
    command = [
        sys.executable,
        "train.py",
        "-m",
        *SWEEP,
        *WAYS[way],
        *limit,
        "trainer.max_epochs=1",
        "test=false",
        "logger=csv",
        f"data_dir={DATA_DIR}",
        f"hydra.sweep.dir={folder}",
    ]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def epoch_seconds(folder: Path) -> dict[str, tuple[int, float]]:
    """Run folder name -> (the pid that trained it, ``time/epoch_s`` of its first epoch)."""
    seconds = {}
    for metrics in sorted(folder.glob("*/metrics.csv")):
        with metrics.open() as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("time/epoch_s")]
        pid = json.loads((metrics.parent / "status.json").read_text())["pid"]
        seconds[metrics.parent.name] = (pid, float(rows[0]["time/epoch_s"]))
    return seconds


def per_model_epoch(way: str, seconds: dict[str, tuple[int, float]]) -> list[float]:
    """Seconds per model-epoch: each separate run's, or each fused group's (the members one
    process trained, which share its epoch time) over its members."""
    if way == "separate":
        return [value for _, value in seconds.values()]
    groups: dict[int, list[float]] = {}
    for pid, value in seconds.values():
        groups.setdefault(pid, []).append(value)
    return [values[0] / len(values) for values in groups.values()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=None, help="steps a run (default: one epoch, 938)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    parser.add_argument("--name", default="fused-sweep-cpu")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        passes = []
        for index, way in enumerate(["separate", "fused", "separate"]):
            folder = base / f"{index}-{way}"
            wall = sweep(way, folder, args.batches)
            seconds = epoch_seconds(folder)
            if len(seconds) != 9:
                raise SystemExit(f"{folder}: {len(seconds)} of 9 runs wrote an epoch time")
            per_model = per_model_epoch(way, seconds)
            passes.append({"way": way, "wall_s": round(wall, 1), "s_per_model_epoch": per_model})
            median = statistics.median(per_model)
            print(f"{way}: {median:.1f} s a model-epoch, wall {wall:.0f} s", file=sys.stderr)
    separate = [s for p in passes if p["way"] == "separate" for s in p["s_per_model_epoch"]]
    fused = passes[1]["s_per_model_epoch"]
    summary: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "steps_a_run": args.batches or 938,
        "passes": passes,
        "separate_median_s_per_model_epoch": round(statistics.median(separate), 2),
        "fused_median_s_per_model_epoch": round(statistics.median(fused), 2),
        "ratio": round(statistics.median(separate) / statistics.median(fused), 3),
    }
    print(json.dumps(summary, indent=2))
    if not args.no_save:
        write_json(ROOT / "benchmarks" / "results" / f"{args.name}.json", summary)


if __name__ == "__main__":
    main()
