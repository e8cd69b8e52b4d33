"""Same seed, same numbers: train a separate run and a fused group of three with a checkout's own
``train.py`` (each member evaluated after training), then reduce every run folder to what must
not change across a refactoring, and compare two such reductions.

    python benchmarks/identity.py run --checkout /tmp/arch-before --out /tmp/identity/before
    python benchmarks/identity.py run --checkout . --out /tmp/identity/after
    python benchmarks/identity.py compare /tmp/identity/before /tmp/identity/after

What is compared, per run folder: ``metrics.csv`` without its wall-time column (``time/epoch_s``);
``results.json`` without ``fit_seconds_this_session`` and ``provenance``; ``eval.json`` without
its timings, provenance, time stamp, the absolute ``run_dir``, the thread count and the digest of
the checkpoint file (whose bytes hold wall times and paths); and every tensor of ``last.ckpt``
and ``best.ckpt`` (weights, Adam state, generators) bit for bit, with their epoch, step, loop
counters and callback records (the run folder's path as ``<run>``, without wall times).
``status.json`` keeps only its ``status``. The PNGs' SHA-256 are listed too. ``compare`` prints
one line per difference and ``identical`` or ``DIFFERENT``; it exits 1 on a difference.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: What both commands share: 2 epochs of 15 steps, pictures every epoch, a small evaluation.
COMMON = [
    "logger=csv",
    "threads=1",
    "seed=7",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=15",
    "trainer.limit_test_batches=3",
    "trainer.enable_progress_bar=false",
    "images_every_n_epochs=1",
    "evaluate=true",
    "eval.threads=1",
    "eval.device=cpu",
    "eval.rec_batches=3",
    "eval.n_batches=2",
    "eval.k=8",
    "eval.batch_size=50",
    "eval.bootstrap=50",
    "eval.evidence_likelihood=[gaussian,bernoulli]",
]
SEPARATE = ["divergence=gjs", "alpha=0.3"]
FUSED = [
    "-m",
    "divergence=kl_qp,gjs,mmd_reference",
    "alpha=0.3",
    "hydra/launcher=fused",
    "hydra.launcher.n_jobs=1",
    "hydra.sweep.subdir=member${hydra.job.num}",
]

RESULTS_VOLATILE = ("fit_seconds_this_session", "provenance")
EVAL_VOLATILE = ("timings_s", "provenance", "evaluated", "run_dir", "threads")


def run(checkout: Path, out: Path) -> None:
    """Train the separate run and the fused group with ``checkout``'s train.py into ``out``."""
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "WANDB_MODE": "offline"}
    commands = {
        "separate": [*SEPARATE, *COMMON, f"hydra.run.dir={out / 'separate'}"],
        "fused": [*FUSED, *COMMON, f"hydra.sweep.dir={out / 'fused'}"],
    }
    for name, args in commands.items():
        started = time.perf_counter()
        subprocess.run([sys.executable, str(checkout / "train.py"), *args], check=True, cwd=checkout, env=env)
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    write_reduced(out)


def write_reduced(out: Path) -> None:
    (out / "reduced.json").write_text(json.dumps(reduce_all(out), indent=1, sort_keys=True))


def _digest(value: Any) -> Any:
    """Tensors as their dtype, shape and SHA-256 of their bytes; containers element by element."""
    import torch

    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous()
        raw = data.reshape(-1).view(torch.uint8) if data.dtype != torch.bool else data.to(torch.uint8)
        return f"{data.dtype} {list(data.shape)} {hashlib.sha256(raw.numpy().tobytes()).hexdigest()}"
    if isinstance(value, dict):
        return {str(k): _digest(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_digest(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(type(value))


def _stable(value: Any, folder: str) -> Any:
    """``value`` without what differs between two trainings of the same numbers: the run folder's
    absolute path (in strings and keys) becomes ``<run>``, the wall time ``time/epoch_s`` goes."""
    if isinstance(value, dict):
        return {_stable(k, folder): _stable(v, folder) for k, v in value.items() if k != "time/epoch_s"}
    if isinstance(value, (list, tuple)):
        return [_stable(v, folder) for v in value]
    return value.replace(folder, "<run>") if isinstance(value, str) else value


def _checkpoint(path: Path) -> dict[str, Any]:
    import torch

    record = torch.load(path, map_location="cpu", weights_only=False)
    kept = ("epoch", "global_step", "state_dict", "optimizer_states", "loops", "hyper_parameters")
    callbacks = _stable(record.get("callbacks", {}), str(path.parent.parent))
    return {**{key: _digest(record.get(key)) for key in kept}, "callbacks": _digest(callbacks)}


def reduce_run(folder: Path) -> dict[str, Any]:
    with (folder / "metrics.csv").open() as handle:
        rows = [{k: v for k, v in row.items() if k != "time/epoch_s"} for row in csv.DictReader(handle)]
    results = json.loads((folder / "results.json").read_text())
    evaluation = json.loads((folder / "eval.json").read_text())
    evaluation["eval_config"] = {k: v for k, v in evaluation["eval_config"].items() if k != "data_dir"}
    # the checkpoint file's digest covers its wall times and paths; its tensors are compared below
    evaluation["checkpoint"] = {k: v for k, v in evaluation["checkpoint"].items() if k != "sha256"}
    return {
        "status": json.loads((folder / "status.json").read_text())["status"],
        "metrics.csv": rows,
        "results.json": {k: v for k, v in results.items() if k not in RESULTS_VOLATILE},
        "eval.json": {k: v for k, v in evaluation.items() if k not in EVAL_VOLATILE},
        "checkpoints": {p.name: _checkpoint(p) for p in sorted((folder / "checkpoints").glob("*.ckpt"))},
        "pngs": {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))
        },
    }


def reduce_all(out: Path) -> dict[str, Any]:
    folders = [
        out / "separate",
        *sorted(p for p in (out / "fused").iterdir() if (p / "status.json").is_file()),
    ]
    return {str(folder.relative_to(out)): reduce_run(folder) for folder in folders}


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(f"{where}/{key}: only in {'after' if key not in a else 'before'}")
            else:
                found += differences(a[key], b[key], f"{where}/{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {str(a)[:120]} != {str(b)[:120]}"]


def compare(before: Path, after: Path) -> int:
    a = json.loads((before / "reduced.json").read_text())
    b = json.loads((after / "reduced.json").read_text())
    pngs = [d for d in differences(a, b) if "/pngs/" in d]
    found = [d for d in differences(a, b) if "/pngs/" not in d]
    tensors = sum(json.dumps(run["checkpoints"]).count('"torch.') for run in a.values())
    print(f"runs: {', '.join(a)}")
    print(
        f"compared per run: status, metrics.csv ({sum(len(r['metrics.csv']) for r in a.values())} rows), "
        f"results.json, eval.json, checkpoints ({sum(len(r['checkpoints']) for r in a.values())} files, "
        f"{tensors} tensors in all)"
    )
    for line in found:
        print(line)
    print(f"PNG files: {sum(len(r['pngs']) for r in a.values())}, differing: {len(pngs)}")
    for line in pngs:
        print(f"  {line}")
    print("identical" if not found else f"DIFFERENT ({len(found)} differences)")
    return 1 if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("run")
    runs.add_argument("--checkout", type=Path, required=True)
    runs.add_argument("--out", type=Path, required=True)
    reduced = sub.add_parser("reduce", help="only reduce the run folders of an earlier run")
    reduced.add_argument("--out", type=Path, required=True)
    compared = sub.add_parser("compare")
    compared.add_argument("before", type=Path)
    compared.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.checkout.resolve(), args.out.resolve())
    elif args.command == "reduce":
        write_reduced(args.out.resolve())
    else:
        sys.exit(compare(args.before, args.after))


if __name__ == "__main__":
    main()
