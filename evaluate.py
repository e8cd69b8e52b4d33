"""Evaluate a finished run: ``python evaluate.py run_dir=outputs/<name>/<time>`` or every run of a
sweep: ``python evaluate.py sweep_dir=multirun/<time>`` (done runs are skipped; ``force=true``).

Thin entry point (the same as the installed ``vae-gjs-evaluate``): compose (Hydra, conf/),
validate, then hand over to :func:`vae_gjs.tasks.evaluate.evaluate`. Writes ``<run>/eval.json``
and ``<run>/figures/*.png``; options in conf/evaluate.yaml.
"""

from vae_gjs import cli

if __name__ == "__main__":
    cli.evaluate_main()
