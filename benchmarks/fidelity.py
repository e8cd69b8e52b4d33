"""Fidelity of a precision: the same runs trained in two precisions, their test SSE and log p(x)
compared with the spread between seeds (docs/performance.md, "bfloat16").

    python train.py -m divergence=kl_qp seed=1234,1,2 budget=cpu hydra/launcher=basic threads=1 \\
        evaluate=true precision=fp32 hydra.sweep.dir=<A>       # and the same with precision=bf16 into <B>
    python benchmarks/fidelity.py <A> <B>

Reads each run folder's ``eval.json`` (Table 1's per-image test SSE with z = μ, ``test/sse``, and
the importance-sampled ``test/log_px``) and ``config.yaml`` (divergence, α, seed), groups the runs
of each folder by divergence (and α), and prints per group and folder the mean ± sample standard
deviation over seeds, then the difference of the means (B − A) beside the seeds' spread: the
standard error of that difference, √(sd_A²/n_A + sd_B²/n_B), and the paired differences of runs
with the same seed (same initial weights, batches and noise in both precisions). A difference
within about two standard errors is within the noise between seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import yaml

METRICS = ("test/sse", "test/log_px")


def runs(sweep: Path) -> dict[str, dict[int, dict[str, float]]]:
    """``{divergence label: {seed: {metric: value}}}`` of the evaluated runs under ``sweep``."""
    found: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for record in sorted(sweep.glob("*/eval.json")):
        config = yaml.safe_load((record.parent / "config.yaml").read_text())
        label = config["choices"]["divergence"]
        if config.get("alpha") is not None:
            label += f" α={config['alpha']:g}"
        metrics = json.loads(record.read_text())["metrics"]
        found[label][int(config["seed"])] = {name: float(metrics[name]) for name in METRICS}
    return dict(found)


def describe(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", type=Path, help="sweep folder of the reference precision (fp32)")
    parser.add_argument("b", type=Path, help="sweep folder of the other precision (bf16)")
    args = parser.parse_args()
    a, b = runs(args.a), runs(args.b)
    if not a or not b:
        sys.exit(f"Error: no evaluated runs (eval.json) under {args.a if not a else args.b}")
    header = (
        "runs",
        "metric",
        "A: mean ± sd (n)",
        "B: mean ± sd (n)",
        "B − A",
        "s.e. of B − A",
        "paired B − A",
    )
    print("| " + " | ".join(header) + " |")
    print("|---|---|---:|---:|---:|---:|---|")
    for label in sorted(a.keys() & b.keys()):
        for metric in METRICS:
            va = [run[metric] for run in a[label].values()]
            vb = [run[metric] for run in b[label].values()]
            (ma, sa), (mb, sb) = describe(va), describe(vb)
            se = math.sqrt(sa**2 / len(va) + sb**2 / len(vb))
            paired = [
                b[label][s][metric] - a[label][s][metric] for s in sorted(a[label].keys() & b[label].keys())
            ]
            print(
                f"| {label} | {metric} | {ma:.3f} ± {sa:.3f} ({len(va)}) | {mb:.3f} ± {sb:.3f} ({len(vb)}) "
                f"| {mb - ma:+.3f} | {se:.3f} | {', '.join(f'{d:+.3f}' for d in paired)} |"
            )


if __name__ == "__main__":
    main()
