"""Train a VAE: ``python train.py divergence=gjs alpha=0.2 dataset=fmnist`` (``-m`` to sweep).

Thin entry point (the same as the installed ``vae-gjs-train``): compose (Hydra, conf/), validate,
then hand over to :func:`vae_gjs.tasks.train.train`. Lightning is imported only after
validation, so ``--help`` and bad values answer at once.
"""

from vae_gjs import cli

if __name__ == "__main__":
    cli.train_main()
