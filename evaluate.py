"""Evaluate a finished run: ``python evaluate.py run_dir=outputs/<name>/<time>`` or every run of a
sweep: ``python evaluate.py sweep_dir=multirun/<time>`` (done runs are skipped; ``force=true``).

Thin entry point: compose (Hydra), validate, then hand over to :mod:`vae_gjs.evaluation.runner`.
Writes ``<run>/eval.json`` and ``<run>/figures/*.png``; options in conf/evaluate.yaml.
"""

import hydra
from omegaconf import DictConfig

from vae_gjs.cli import run_task
from vae_gjs.config import register_resolvers

register_resolvers()


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> object:
    return run_task("vae_gjs.evaluation.options.main", cfg, check=False)


if __name__ == "__main__":
    main()
