"""Resuming checks the config: an unfinished run's folder continues only with the config its
weights were trained with. Keys that may change between attempts (how long, how fast, what is
logged or evaluated, where the data lies) are ignored; any other difference is refused.

A key the folder's config lacks is accepted only where the project's own older versions lacked
it (:data:`ADDED`: a newer version resuming an older run, each new key's default keeping the
earlier behaviour; listed in a warning); any other missing key (deleted by hand) is a difference
like any other, and refused."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.errors import RunError
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)
MISSING = "<absent>"

#: Keys that a resumed run may change (with everything below them).
MAY_CHANGE = (
    "threads",
    "compile",
    "ckpt_path",
    "test",
    "evaluate",
    "eval",
    "logger",
    "callbacks",
    "images_every_n_epochs",
    "log_every_n_steps",
    "data_dir",
    "dataset.root",
    "dataset.download",
    "dataset.eval_batch_size",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "run_dir",
    "run_name",
    "group",
    "tags",
    "choices.budget",
)


#: Keys (with everything below them) that conf/ gained after its first version (b28a424): a run
#: folder written before may lack them. ``choices`` (93a4590), ``module`` (c3212fb: the model as
#: one instantiate), ``debug_run`` (c17600e), ``learn_alpha`` and ``optim.alpha_lr`` (a951fdf),
#: ``precision`` (b5169b8), ``config_version`` (absent from the very first config).
ADDED = ("choices", "config_version", "debug_run", "learn_alpha", "module", "optim.alpha_lr", "precision")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flat(value, f"{prefix}{key}."))
        return flat or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}


def _under(key: str, roots: tuple[str, ...]) -> bool:
    """``key`` is one of ``roots`` or lies below one."""
    return any(key == k or key.startswith(f"{k}.") for k in roots)


def differences(saved: DictConfig, new: DictConfig) -> dict[str, tuple[Any, Any]]:
    """``key -> (saved value, new value)`` for every key that differs and may not change
    (``"<absent>"`` for a key one side lacks)."""
    old = _flat(OmegaConf.to_container(saved, resolve=True))
    now = _flat(OmegaConf.to_container(new, resolve=True))
    keys = sorted(k for k in old.keys() | now.keys() if not _under(k, MAY_CHANGE))
    pairs = {k: (old.get(k, MISSING), now.get(k, MISSING)) for k in keys}
    return {k: pair for k, pair in pairs.items() if pair[0] != pair[1]}


def check_same_config(
    run: RunDir, cfg: DictConfig, record: Callable[[DictConfig], DictConfig] = lambda c: c
) -> None:
    """Refuse to resume ``run`` with ``cfg`` if they differ in a key that may not change: one line
    listing the keys, the folder's values and this command's, and how to start afresh. Both
    configs are compared as ``record`` writes them (``config.recorded_config``); keys only this
    command has, where an older version of the platform lacked them (:data:`ADDED`), are listed
    in a warning."""
    if not run.config_file.is_file():
        return
    changed = differences(record(run.load_config()), record(cfg))
    added = sorted(k for k, (old, _) in changed.items() if old is MISSING and _under(k, ADDED))
    if added:
        log.warning(
            f"{run.path} was written by an older version of vae-gjs, before the keys {', '.join(added)} "
            "existed; resuming with their current values"
        )
    changed = {k: pair for k, pair in changed.items() if k not in added}
    if changed:
        listed = ", ".join(f"{k} ({old!r} in the folder, {new!r} now)" for k, (old, new) in changed.items())
        raise RunError(
            f"{run.path} holds an unfinished run with another config: {listed}; resume it with the "
            "folder's values, or start afresh in a new folder (hydra.run.dir=<new folder>, or delete "
            f"{run.path})"
        )
