"""Fused vs separate after whole epochs: the issue's three members (``kl_qp``, ``gjs`` α = 0.3,
``mmd_reference``) trained fused (one group) and separately (``train()``, Lightning), then the
test metrics of each on the whole MNIST test set, side by side. Prints one JSON object.

    python benchmarks/fused_agreement.py                 # one epoch, in a temporary folder
    python benchmarks/fused_agreement.py --epochs 2 --out runs/agreement

About 25 minutes on 2 quiet CPU cores for one epoch (3 separate epochs + one fused epoch of 3);
a minute or two on a GPU (``trainer.accelerator=auto`` picks it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.fused.conftest import THREE, member_config  # noqa: E402

from vae_gjs.fused.group import FusedGroup  # noqa: E402
from vae_gjs.rundir import RunDir  # noqa: E402
from vae_gjs.tasks.train import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="folder for the run folders (default: a temporary one)")
    args = parser.parse_args()
    full = [
        f"trainer.max_epochs={args.epochs}",
        "trainer.max_steps=-1",
        "trainer.limit_test_batches=null",
        "dataset.eval_batch_size=500",
        f"threads={args.threads}",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        started = time.perf_counter()
        FusedGroup([member_config(root / f"fused{i}", [*o, *full]) for i, o in enumerate(THREE)]).run()
        seconds = {"fused_group": round(time.perf_counter() - started, 1)}
        for i, overrides in enumerate(THREE):
            started = time.perf_counter()
            train(member_config(root / f"separate{i}", [*overrides, *full]))
            seconds[f"separate{i}"] = round(time.perf_counter() - started, 1)
        rows = []
        for i, overrides in enumerate(THREE):
            fused, separate = RunDir.at(root / f"fused{i}").results, RunDir.at(root / f"separate{i}").results
            rows.append(
                {
                    "member": " ".join(overrides),
                    "fused_test_sse": fused["test/rec"],
                    "separate_test_sse": separate["test/rec"],
                    "relative_difference": abs(fused["test/rec"] - separate["test/rec"])
                    / separate["test/rec"],
                    "fused_test_div": fused["test/div"],
                    "separate_test_div": separate["test/div"],
                }
            )
    print(json.dumps({"epochs": args.epochs, "members": rows, "wall_seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
