"""Resuming checks the config: an unfinished run's folder continues only with the config its
weights were trained with. Keys that may change between attempts (how long, how fast, what is
logged or evaluated, where the data lies) are ignored; any other difference is refused. A
completed folder is skipped when the config is the same, trained on with ``ckpt_path=last`` and a
longer ``trainer.max_epochs``, and refused in one line otherwise (:func:`train_on_completed`).

A key the folder's config lacks is accepted only where the project's own older versions lacked
it (:data:`~vae_gjs.config.keys.ADDED`: a newer version resuming an older run, each new key's
default keeping the earlier behaviour; listed in a warning), and with the value the older runs
trained with where one did (:data:`~vae_gjs.config.keys.ADDED_AS`); any other missing key (deleted
by hand) is a difference like any other, and refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.config.keys import ADDED, ADDED_AS, LENGTH, MAY_CHANGE, flat, under
from vae_gjs.errors import RunError
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)
MISSING = "<absent>"


def differences(saved: DictConfig, new: DictConfig) -> dict[str, tuple[Any, Any]]:
    """``key -> (saved value, new value)`` for every key that differs and may not change
    (``"<absent>"`` for a key one side lacks)."""
    old = flat(OmegaConf.to_container(saved, resolve=True))
    now = flat(OmegaConf.to_container(new, resolve=True))
    keys = sorted(k for k in old.keys() | now.keys() if not under(k, MAY_CHANGE))
    pairs = {k: (old.get(k, MISSING), now.get(k, MISSING)) for k in keys}
    return {k: pair for k, pair in pairs.items() if pair[0] != pair[1]}


Record = Callable[[DictConfig], DictConfig]
#: How to give a config of its own to a run whose folder holds another.
NEW_FOLDER = "a new folder (leave hydra.run.dir out, or hydra.run.dir=<new folder>)"


def _listed(changed: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} ({old!r} in the folder, {new!r} now)" for k, (old, new) in changed.items())


def changed_keys(run: RunDir, cfg: DictConfig, record: Record) -> dict[str, tuple[Any, Any]]:
    """The keys that may not change in which ``cfg`` differs from the run folder's config, both as
    ``record`` writes them (``config.recorded_config``); keys only ``cfg`` has, where an older
    version of the platform lacked them (:data:`ADDED`) and that keep the value those versions
    used (:data:`ADDED_AS`), are listed in a warning instead."""
    changed = differences(record(run.load_config()), record(cfg))
    added = sorted(
        k
        for k, (old, new) in changed.items()
        if old is MISSING and under(k, ADDED) and ADDED_AS.get(k.removeprefix("module."), new) == new
    )
    if added:
        log.warning(
            f"{run.path} was written by an older version of vae-gjs, before the keys {', '.join(added)} "
            "existed; using their current values"
        )
    return {k: pair for k, pair in changed.items() if k not in added}


def check_same_config(run: RunDir, cfg: DictConfig, record: Record = lambda c: c) -> None:
    """Refuse to resume ``run`` with ``cfg`` if they differ in a key that may not change: one line
    listing the keys, the folder's values and this command's, and how to start afresh."""
    if not run.config_file.is_file():
        return
    changed = changed_keys(run, cfg, record)
    if changed:
        raise RunError(
            f"{run.path} holds an unfinished run with another config: {_listed(changed)}; resume it with "
            f"the folder's values, or start afresh in {NEW_FOLDER} or delete {run.path}"
        )


def _unlimited(value: Any) -> bool:
    return value is None or value == -1


def check_length(where: str, epochs: int, steps: int, trainer: DictConfig) -> None:
    """A run resumed from a checkpoint after ``epochs`` epochs (``steps`` steps) must be allowed
    at least that many: a one-line :class:`RunError` (instead of Lightning's traceback) naming
    what ``where`` holds and the values that resume it."""
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps")
    if not _unlimited(max_epochs) and max_epochs < epochs:
        raise RunError(
            f"{where} holds {epochs} trained epochs ({steps} steps); trainer.max_epochs={max_epochs} is "
            f"fewer: allowed: trainer.max_epochs >= {epochs} to train on from it, or {NEW_FOLDER} "
            "to start afresh"
        )
    if not _unlimited(max_steps) and max_steps < steps:
        raise RunError(
            f"{where} holds {steps} trained steps; trainer.max_steps={max_steps} is fewer: allowed: "
            f"trainer.max_steps >= {steps} (or -1) to train on from it, or {NEW_FOLDER} to start afresh"
        )


def train_on_completed(run: RunDir, cfg: DictConfig, record: Record = lambda c: c) -> bool:
    """What to do with a completed run folder: ``False`` to skip it (the same config: re-running a
    sweep only runs what is missing), ``True`` to train it on from its last.ckpt (``ckpt_path=last``
    with a longer ``trainer.max_epochs`` or ``max_steps``: the documented way to extend a finished
    run); anything else is a one-line :class:`RunError` saying what the folder holds and what to do,
    instead of skipping the run as if this command's values had been applied."""
    done = run.results
    holds = f"{run.path} holds a run completed after {done.get('epochs')} epochs ({done.get('steps')} steps)"
    changed = changed_keys(run, cfg, record)
    if changed:
        raise RunError(
            f"{holds} with another config: {_listed(changed)}; it is not retrained: run it with the folder's "
            f"values, or this config in {NEW_FOLDER}"
        )
    saved, now = record(run.load_config()), record(cfg)
    longer = {k: (OmegaConf.select(saved, k), OmegaConf.select(now, k)) for k in LENGTH}
    longer = {k: pair for k, pair in longer.items() if pair[0] != pair[1]}
    if not longer:
        return False
    asked = " ".join(f"{k}={new}" for k, (_, new) in longer.items())
    if cfg.get("ckpt_path") != "last":
        raise RunError(
            f"{holds}; {asked} is not applied to it: add ckpt_path=last to train it on from its last.ckpt "
            f"(the same folder, W&B run and metrics.csv), or start afresh in {NEW_FOLDER}"
        )
    epochs, steps = done.get("epochs", 0), done.get("steps", 0)
    check_length(str(run.path), epochs, steps, cfg.trainer)
    max_epochs, max_steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps")
    more_epochs = _unlimited(max_epochs) or max_epochs > epochs
    more_steps = _unlimited(max_steps) or max_steps > steps
    if not (more_epochs and more_steps):
        raise RunError(f"{holds}; {asked} trains no further; allowed: a larger trainer.max_epochs or -1")
    return True
