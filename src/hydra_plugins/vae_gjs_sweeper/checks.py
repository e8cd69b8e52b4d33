"""A search by another sweeper (``hparams_search=optuna``) is checked before its first trial:
``hydra.callbacks`` entry :class:`CheckSearchFirst`. (The project's own sweeper checks every job
itself, :mod:`.sweeper`.)"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class CheckSearchFirst(Callback):
    """Before a search starts (and before its sweep folder exists), its base config is checked
    as ``train.py`` checks a run, and a searched ``alpha`` needs a divergence with a skew: a bad
    value is refused once, in one line, instead of failing every trial."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from vae_gjs.cli import exit_if_refused, refused_jobs

        refused = refused_jobs([[]], lambda _: config)
        params = config.hydra.sweeper.get("params") or {}
        choice = config.hydra.runtime.choices.get("divergence")
        if "alpha" in params and "alpha" not in config.divergence:
            refused.append(
                f"hydra.sweeper.params.alpha={params['alpha']} with divergence={choice}: {choice} has no "
                "skew α, so every value of the search trains the same model; search alpha with "
                "divergence=gjs or divergence=dgjs"
            )
        exit_if_refused(refused, "this search")
