"""Evaluate a finished run: ``python evaluate.py run_dir=outputs/<name>/<time>`` or every run of a
sweep: ``python evaluate.py sweep_dir=multirun/<time>`` (done runs are skipped; ``force=true``).

Thin entry point: compose (Hydra), validate, then hand over to :func:`vae_gjs.tasks.evaluate.evaluate`.
Writes ``<run>/eval.json`` and ``<run>/figures/*.png``; options in conf/evaluate.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from vae_gjs import cli
from vae_gjs.config import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> object:
    return cli.entry(cli.evaluate, cfg)


if __name__ == "__main__":
    sys.argv[1:] = cli.quoted_paths(sys.argv[1:])  # a sweep job's folder holds '=' and ','
    main()
