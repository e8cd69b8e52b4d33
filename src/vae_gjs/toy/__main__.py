"""Command line: ``python -m vae_gjs.toy {fig1,fig2} --out DIR [options]``.

Only :mod:`argparse` is imported up front, so ``--help`` is instant; torch and matplotlib are
imported when a figure is actually built.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vae_gjs.toy",
        description="Low-dimensional studies of Deasy et al. (2020), Section 3.1: Figures 1 and 2.",
    )
    sub = parser.add_subparsers(dest="figure", required=True, metavar="{fig1,fig2}")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default="figures/", help="output folder (default: %(default)s)")

    sub.add_parser(
        "fig1",
        parents=[common],
        help="univariate p = N(-2,1), q = N(2,2²): mean distributions, JS and JS^G0.5 integrands",
        description="Writes <out>/fig1.png. Deterministic (no seed, no optimisation).",
    )
    fig2 = sub.add_parser(
        "fig2",
        parents=[common],
        help="bivariate: fit one diagonal Gaussian to a 10-component mixture under fKL, rKL, JS, JS^G0.5",
        description="Writes <out>/fig2.png and <out>/fig2.json (fitted parameters, objective values).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    fig2.add_argument("--seed", type=int, default=0, help="seed for the data draw and the optimisation")
    fig2.add_argument("--steps", type=int, default=2000, help="Adam steps per objective")
    fig2.add_argument("--n-data", type=int, default=100_000, help="number of data samples")
    fig2.add_argument("--batch-size", type=int, default=1024, help="data samples and Q samples per step")
    fig2.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (cosine-decayed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.figure == "fig1":
        from vae_gjs.toy import fig1

        summary = fig1.run(args.out)
    else:
        from vae_gjs.toy import fig2

        summary = fig2.run(
            args.out,
            seed=args.seed,
            steps=args.steps,
            n_data=args.n_data,
            batch_size=args.batch_size,
            lr=args.lr,
        )
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
