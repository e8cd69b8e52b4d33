"""Train a VAE: ``python train.py divergence=gjs alpha=0.2 dataset=fmnist`` (``-m`` to sweep).

Thin entry point: compose (Hydra), validate, then hand over to :func:`vae_gjs.tasks.train.train`.
Lightning is imported only after validation, so ``--help`` and bad values answer at once.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vae_gjs import cli, signals
from vae_gjs.config import register_resolvers

register_resolvers()
signals.install()  # a SIGTERM while Hydra starts is recorded: the run then stops with exit 143


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return cli.entry(cli.train, cfg)


if __name__ == "__main__":
    # a checkpoint in a sweep job's folder (``.../alpha=0.3,divergence=gjs/...``) needs no quoting
    sys.argv[1:] = cli.quoted_paths(sys.argv[1:], keys=("ckpt_path",), marks="=")
    cli.refuse_unknown_keys(sys.argv[1:], Path(__file__).resolve().parent / "conf", "train")
    main()
