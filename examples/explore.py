"""Explore a trained model from its run folder: test images over their reconstructions, samples
from the prior, latent traversals of the most used dimensions, an interpolation between two test
images, and log p(x) of each shown image, in one figure (vae_gjs.open_run, README "A trained
model in Python").

    python examples/explore.py outputs/<run>/<time>                  # writes explore.png here
    python examples/explore.py outputs/<run>/<time> --out fig.png --checkpoint best --k 512
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")  # write a file; no window needed

import matplotlib.pyplot as plt
import torch

import vae_gjs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder written by train.py")
    parser.add_argument("--out", default="explore.png", help="the figure to write (default: explore.png)")
    parser.add_argument("--checkpoint", default="last", choices=["last", "best"])
    parser.add_argument("--k", type=int, default=128, help="importance samples per image for log p(x)")
    args = parser.parse_args()

    run = vae_gjs.open_run(args.run_dir, checkpoint=args.checkpoint)
    x = run.images("test", 10)  # the run's own test split, [10, C, H, W] in [0, 1]
    kl = run.kl_per_dim(run.images("test", 500))  # which latent dimensions the model uses
    dims = kl.argsort(descending=True)[:4].tolist()
    log_px = run.log_px(x, k=args.k)  # [10], importance-sampled under the run's likelihood

    panels = {
        "test images (top) and reconstructions from z = μ": run.grid(torch.cat([x, run.reconstruct(x)])),
        "samples from the prior N(0, I)": run.grid(run.sample(20, seed=0)),
        f"traversals of test image 0 along {', '.join(f'z{d}' for d in dims)} (most used first), "
        "each z_d over [-3, 3]": run.grid(run.traverse(x[0], dims)),
        "interpolation from test image 0 to test image 1 (between their μ)": run.grid(
            run.interpolate(x[0], x[1], steps=10)
        ),
    }
    figure, axes = plt.subplots(len(panels), 1, figsize=(7, 10), height_ratios=[2, 2, 4, 1])
    for ax, (title, picture) in zip(axes, panels.items(), strict=True):
        ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    name = run.config.run_name
    figure.suptitle(f"{name}: log p(x) of the 10 test images, mean {log_px.mean():.1f} nats (K = {args.k})")
    figure.tight_layout()
    figure.savefig(args.out, dpi=120)

    print(f"{name} ({run.path}, {args.checkpoint}.ckpt)")
    print("KL(q‖p) per latent dimension, most used first: " + ", ".join(f"z{d} {kl[d]:.2f}" for d in dims))
    print(f"log p(x) of test images 0-9 (K = {args.k}): " + " ".join(f"{v:.1f}" for v in log_px.tolist()))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
