"""Validation of train.py's config (and the fused launcher's options) before anything heavy is
imported: a one-line :class:`~vae_gjs.errors.ConfigError` for every value a user is likely to
get wrong, naming the value and what is allowed. Checks that need Lightning or the data take
what those know as arguments (:func:`check_trainer_arguments`, :func:`check_monitors`), so the
rules stay here."""

from __future__ import annotations

import importlib.resources
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from vae_gjs.config.evaluate import validate_eval_options
from vae_gjs.config.keys import EXTENSIBLE, SET_ELSEWHERE
from vae_gjs.config.names import LIKELIHOODS, OBJECTIVES, PRECISIONS, SEED_MAX, WANDB_ENV_MODES, WANDB_MODES
from vae_gjs.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_in_unit_interval,
    check_int,
    check_non_negative,
    check_positive_int,
    check_positive_real,
    closest,
)

log = logging.getLogger(__name__)


def _get(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception as error:  # interpolation or missing-value errors from OmegaConf
        raise ConfigError(f"{key}: {error}") from error


def override_key(override: str) -> str:
    """The key of a command-line override: ``+optim.lr=0.1`` -> ``optim.lr``."""
    return override.split("=", 1)[0].lstrip("+~")


def unused_alpha(cfg: DictConfig) -> str | None:
    """A warning when ``alpha`` was set on the command line but the divergence has no α (e.g.
    ``python train.py divergence=kl_qp alpha=0.3``: the same run as without it). A sweep over
    ``alpha`` with such a divergence is refused (:func:`alpha_sweeps_without_skew`)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized() or "alpha" in _get(cfg, "divergence"):
        return None
    hydra_cfg = HydraConfig.get()
    if not any(override_key(o) == "alpha" for o in hydra_cfg.overrides.task):
        return None
    choice = hydra_cfg.runtime.choices.get("divergence")
    return (
        f"alpha={_get(cfg, 'alpha')} has no effect with divergence={choice}, which has no skew; "
        "alpha is used by divergence=gjs and divergence=dgjs"
    )


def check_learn_alpha(cfg: DictConfig) -> None:
    """``learn_alpha`` is a boolean, and ``true`` only with a divergence that has a skew to learn
    (one whose config takes ``learn_alpha``: gjs, dgjs); ``optim.alpha_lr`` is a real ≥ 0."""
    learn = _get(cfg, "learn_alpha")
    if not isinstance(learn, bool):
        raise ConfigError(f"learn_alpha={learn!r} is not allowed; allowed: true or false")
    check_non_negative("optim.alpha_lr", _get(cfg, "optim.alpha_lr"))
    if learn and "learn_alpha" not in _get(cfg, "divergence"):
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get("divergence") if HydraConfig.initialized() else None
        target = choice or _get(cfg, "divergence._target_")
        raise ConfigError(
            f"learn_alpha=true with divergence={target}, which has no skew α to learn; "
            "allowed: learn_alpha=true with divergence=gjs or divergence=dgjs, or learn_alpha=false"
        )


def validate(cfg: DictConfig, warn: bool = True) -> None:
    """Check train.py's config; raise a one-line :class:`ConfigError`. Values that are valid
    but have no effect (:func:`unused_alpha`) are logged as warnings (with ``warn``)."""
    check_in_unit_interval("alpha", _get(cfg, "alpha"))
    check_positive_real("optim.lr", _get(cfg, "optim.lr"))  # before optim.alpha_lr, which copies it
    check_learn_alpha(cfg)
    check_non_negative("lam", _get(cfg, "lam"))
    seed = _get(cfg, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={seed!r} is not allowed; allowed: an integer with 0 <= seed <= {SEED_MAX}")
    check_choice("likelihood", _get(cfg, "likelihood"), LIKELIHOODS)
    check_choice("precision", _get(cfg, "precision"), PRECISIONS)
    check_positive_int("model.latent_dim", _get(cfg, "model.latent_dim"))
    check_positive_int("dataset.batch_size", _get(cfg, "dataset.batch_size"))
    check_positive_int("dataset.eval_batch_size", _get(cfg, "dataset.eval_batch_size"))
    check_int("dataset.val_size", _get(cfg, "dataset.val_size"), 0)
    for optional_count in ("threads", "images_every_n_epochs", "log_every_n_steps"):
        if _get(cfg, optional_count) is not None:
            check_positive_int(optional_count, _get(cfg, optional_count))
    check_trainer(_get(cfg, "trainer"))
    check_added_keys(cfg)
    if "wandb" in _get(cfg, "logger"):
        check_wandb_mode(_get(cfg, "logger.wandb.mode"))
    for group in ("dataset", "divergence", "model", "module"):
        if "_target_" not in _get(cfg, group):
            raise ConfigError(f"{group} has no _target_; choose one of the configs in conf/{group}/")
    callbacks = _get(cfg, "callbacks")
    if not isinstance(callbacks, DictConfig):
        raise ConfigError(
            f"callbacks={'null' if callbacks is None else repr(callbacks)} is not allowed; allowed: "
            "callbacks=default (conf/callbacks/), and "
            "callbacks.<name>=null to drop one callback (callbacks.checkpoint and callbacks.random_state "
            "keep a run resumable)"
        )
    for name, node in callbacks.items():
        if node is not None and (not isinstance(node, DictConfig) or "_target_" not in node):
            raise ConfigError(
                f"callbacks.{name} has no _target_; allowed: a callback config with _target_ "
                "(conf/callbacks/), or null to drop it"
            )
    for flag in ("test", "evaluate", "compile", "debug_run", "checkpoint_artifacts"):
        check_bool(flag, _get(cfg, flag))
    check_objective(_get(cfg, "objective"), _get(cfg, "dataset.val_size"))
    validate_eval_options(_get(cfg, "eval"))
    ckpt = _get(cfg, "ckpt_path")
    if ckpt not in (None, "last") and not Path(str(ckpt)).is_file():
        raise ConfigError(f"ckpt_path={ckpt!r} does not exist; allowed: null, 'last' or a checkpoint file")
    warning = unused_alpha(cfg) if warn else None
    if warning:
        log.warning(warning)


def alpha_sweeps_without_skew(jobs: Sequence[tuple[Sequence[str], str, bool]]) -> list[str]:
    """One line for each set of sweep jobs that differ only in ``alpha`` while their divergence
    has no skew α: they would train the same model (``-m 'alpha=range(0.1,1,0.1)'`` with
    ``divergence=kl_qp``: 9 identical runs). ``jobs``: each job's overrides, its divergence
    choice and whether that divergence takes ``alpha``."""
    alike: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for overrides, divergence, has_skew in jobs:
        alphas = [o.split("=", 1)[1] for o in overrides if override_key(o) == "alpha"]
        if has_skew or not alphas:
            continue
        rest = tuple(o for o in overrides if override_key(o) != "alpha")
        alike.setdefault(rest, []).append((alphas[-1], divergence))
    lines = []
    for same in alike.values():
        values = list(dict.fromkeys(alpha for alpha, _ in same))
        if len(values) > 1:
            divergence = same[0][1]
            lines.append(
                f"alpha={','.join(values)} with divergence={divergence}: {divergence} has no skew α, so "
                f"these {len(same)} jobs would train the same model; sweep alpha with divergence=gjs or "
                "divergence=dgjs, and run a baseline without alpha"
            )
    return lines


def check_objective(objective: Any, val_size: int) -> str:
    """``objective`` names a metric train.py can return: ``val/*`` needs a validation split
    (``dataset.val_size > 0``). A ``test/*`` objective with ``test=false`` returns nothing (as
    train.py always has): a run that skips its test is no search's trial."""
    check_choice("objective", objective, OBJECTIVES)
    if objective.startswith("val/") and val_size == 0:
        raise ConfigError(
            f"objective={objective} needs a validation split, but dataset.val_size=0; allowed: "
            f"dataset.val_size > 0 (e.g. 10000) with objective={objective}, or objective=test/rec"
        )
    return objective


def validate_fused_launcher(n_jobs: Any, max_models: Any) -> None:
    """The options of ``hydra/launcher=fused``: ``n_jobs`` null (chosen for the machine), -1 (a
    worker per core) or >= 1; ``max_models`` >= 1."""
    if n_jobs is not None and n_jobs != -1:
        try:
            check_int("hydra.launcher.n_jobs", n_jobs, 1)
        except ConfigError:
            raise ConfigError(
                f"hydra.launcher.n_jobs={n_jobs!r} is not allowed; allowed: null (chosen for the machine), "
                "-1 (one worker per CPU core) or an integer >= 1"
            ) from None
    check_int("hydra.launcher.max_models", max_models, 1)


def check_trainer(trainer: DictConfig) -> None:
    """The Trainer arguments users get wrong, checked before Lightning is imported: epochs and
    steps (-1 or null: no limit) and the ``limit_*_batches`` (a count >= 0 or a fraction in [0, 1])."""
    for key in ("max_epochs", "max_steps"):
        value = trainer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < -1):
            raise ConfigError(
                f"trainer.{key}={value!r} is not allowed; allowed: -1 (no limit) or an integer >= 0"
            )
    if str(trainer.get("precision", "32-true")) not in ("32-true", "32"):
        raise ConfigError(
            f"trainer.precision={trainer.precision} is not used here; allowed: trainer.precision=32-true, "
            "and precision=bf16 for bfloat16 (the net's layers in bf16, losses, divergences and Adam "
            "in float32)"
        )
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = trainer.get(key)
        if value is None:
            continue
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        fraction = isinstance(value, float) and 0.0 <= value <= 1.0
        if not (whole or fraction):
            raise ConfigError(
                f"trainer.{key}={value!r} is not allowed; allowed: null, a number of batches >= 0, "
                "or a fraction between 0.0 and 1.0"
            )


def _keys(node: object, prefix: str = "") -> list[str]:
    if not isinstance(node, DictConfig):
        return [prefix.rstrip(".")]
    keys = [prefix.rstrip(".")] if prefix else []
    for key in node:
        keys += _keys(node._get_node(key), f"{prefix}{key}.")
    return keys


def check_added_keys(cfg: DictConfig) -> None:
    """Refuse a key added on the command line with ``+`` that the config does not have (a typo:
    ``+optim.lrr=0.1``, ``+divergnce=gjs``), naming the closest valid key. Hydra's struct mode
    already refuses a mistyped key without ``+``; ``+`` may add config groups (``+experiment=``)
    and keys under :data:`EXTENSIBLE` groups."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    groups = set(hydra_cfg.runtime.choices)
    added = [o.split("=", 1)[0].lstrip("+") for o in hydra_cfg.overrides.task if o.startswith("+")]
    unknown = [key for key in added if key not in groups and key.split(".")[0] not in EXTENSIBLE]
    if unknown:
        valid = [k for k in _keys(cfg) if k not in unknown] + sorted(g for g in groups if "/" not in g)
        key = unknown[0]
        raise ConfigError(
            f"+{key} is not a key of this config{closest(key, valid)}; allowed: the keys that "
            "`python train.py --cfg job` lists, config groups (+experiment=...), and with '+' only "
            "arguments under trainer., dataset., divergence., model., logger. or callbacks."
        )


def _defaults_list(conf_dir: Path, config_name: str) -> tuple[set[str], set[str], set[str]]:
    """The first keys an override of ``conf/<config_name>.yaml`` may name, the config groups of
    its defaults list, and the groups it places at the global package (``eval@_global_`` in
    evaluate.yaml), which contribute their option's keys instead of their name."""
    import yaml

    top = yaml.safe_load((conf_dir / f"{config_name}.yaml").read_text()) or {}
    names = {key for key in top if key != "defaults"} | {"hydra"}
    groups, global_groups = set(), set()
    for entry in top.get("defaults", []):
        if not isinstance(entry, dict):  # _self_
            continue
        ((spec, option),) = entry.items()
        group, _, package = spec.split()[-1].partition("@")  # "optional debug", "override hydra/x"
        if group.startswith("hydra/"):
            continue
        if package == "_global_":
            names |= set(yaml.safe_load((conf_dir / group / f"{option}.yaml").read_text()) or {})
            global_groups.add(group)
        else:
            groups.add(group)
    return names - {"defaults"}, groups, global_groups


def check_override_keys(
    args: Sequence[str], conf_dir: Path, config_name: str, added_groups: Sequence[str] = ()
) -> None:
    """Refuse, before Hydra composes, what Hydra would refuse in several lines: an override
    without ``+`` whose first key is neither a key of ``conf/<config_name>.yaml`` nor one of its
    config groups (a typo: ``divergnce=gjs``), naming the closest; a group that is added with
    ``+`` only (``added_groups``: ``experiment=table1``); and an option a group does not have
    (``dataset=fashion``; each value of a ``-m`` list), listing the group's options. A mistyped
    key deeper down (``optim.lrr=0.1``) is :func:`check_nested_keys`'s."""
    names, groups, global_groups = _defaults_list(conf_dir, config_name)
    names |= groups
    for arg in args:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        first = key.split("@")[0].split(".")[0].split("/")[0]
        if first in added_groups and key == first:
            raise ConfigError(
                f"{key}={value} is refused: {key} is not in the defaults of {config_name}.yaml; "
                f"allowed: +{key}={value} (with '+', which adds the group)"
            )
        if first not in names:
            rest = key.partition(".")[2]  # eval.k for evaluate.py, where eval's keys are global
            global_key = first in global_groups and rest in names
            hint = f" (did you mean {rest}?)" if global_key else closest(first, names)
            listed = f" and the config groups ({', '.join(sorted(groups))})" if groups else ""
            raise ConfigError(
                f"{key} is not a key of this config{hint}; allowed: the keys that "
                f"`python {config_name}.py --cfg job` lists{listed}"
            )
        if key in groups:
            check_group_options(key, value, conf_dir)


def check_nested_keys(args: Sequence[str], config_name: str) -> None:
    """Refuse an override of a nested key the composed config does not have (``optim.lrr=0.1``,
    ``model.latnt_dim=4``), naming the closest: Hydra says ``Could not override`` in five lines.
    Only where such a key is given, the config is composed first (Hydra's compose API, ~0.2 s)
    with the command line's other overrides, a sweep's first value; what fails to compose then
    is left to Hydra's own message, and a key added with ``+`` to :func:`check_added_keys`. A key
    added with ``+`` that the config already has (``+alpha=0.2``, ``+divergence.prime=false``) is
    refused here too: Hydra says ``Could not append to config`` in three lines."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    conf = importlib.resources.files("vae_gjs.conf")
    try:
        # what is not key=value is Hydra's flag or its value (``--cfg job``)
        overrides = OverridesParser.create().parse_overrides([a for a in args if "=" in a and a[0] != "-"])
    except Exception:  # a grammar error: Hydra names it
        return
    keys = [  # a key below the top, or one added with '+' that is not a config group
        o
        for o in overrides
        if ("." in o.key_or_group or (o.is_add() and not (conf / o.key_or_group).is_dir()))
        and not (o.is_force_add() or o.is_delete())
        and not o.key_or_group.startswith("hydra")
        and o.package is None
    ]
    nested = [o.key_or_group for o in keys if not o.is_add()]
    appended = {o.key_or_group: o.input_line for o in keys if o.is_add()}
    if not keys or GlobalHydra.instance().is_initialized():
        return
    others = []
    for o in overrides:
        if o in keys or o.key_or_group.startswith("hydra") or o.is_delete():
            continue
        sweep = o.is_sweep_override()
        value = next(iter(o.sweep_string_iterator())) if sweep else o.get_value_element_as_str()
        others.append(f"{o.get_key_element()}={value}")
    try:
        with initialize_config_module("vae_gjs.conf", version_base="1.3"):
            cfg = compose(config_name, overrides=others)
    except Exception:  # Hydra's own message names it
        return
    for key in nested:
        if not _has_key(cfg, key):
            raise ConfigError(
                f"{key} is not a key of this config{closest(key, _keys(cfg))}; allowed: the keys that "
                f"`python {config_name}.py --cfg job` lists"
            )
    for key, line in appended.items():
        if _present(cfg, key):
            raise ConfigError(
                f"{line} adds {key}, which this config already has; allowed: {line[1:]} (sets it), "
                f"or +{line} (adds or sets it)"
            )


def _present(cfg: DictConfig, key: str) -> bool:
    """``cfg`` holds the dotted ``key`` itself (not only a node that would accept it)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or node._is_none() or part not in node.keys():  # noqa: SIM118
            return False
        node = node._get_node(part)
    return True


def _has_key(cfg: DictConfig, key: str) -> bool:
    """``cfg`` has the dotted ``key``, or Hydra would accept it there (below a node that is not
    in struct mode, or None, or a value)."""
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig):
            if node._is_none() or node._is_missing() or not OmegaConf.is_struct(node):
                return True
            if part not in node.keys():  # noqa: SIM118 (`in node` resolves interpolations; ??? is absent)
                return False
            node = node._get_node(part)
        elif isinstance(node, ListConfig):
            if not (part.isdigit() and int(part) < len(node)):
                return False
            node = node._get_node(int(part))
        else:
            return True
    return True


def check_group_options(group: str, value: str, conf_dir: Path) -> None:
    """``group=value`` names options ``conf/<group>/`` has: one, or a ``-m`` list of them
    (``dataset=mnist,fmnist``); a sweep function (``choice(...)``, ``glob(...)``) is left to Hydra."""
    options = sorted(path.stem for path in (conf_dir / group).glob("*.yaml"))
    if value in ("null", "None", ""):  # Hydra: a ValueError's traceback
        raise ConfigError(
            f"{group}={value} is not allowed: {group} is a config group; allowed: one of its options "
            f"({', '.join(options)}), or {group}.<entry>=null to drop one of its entries"
        )
    if "(" in value:
        return
    for option in (part.strip().strip("'\"") for part in value.split(",")):
        if option not in options:
            raise ConfigError(
                f"{group}={option} is not an option of the {group} group{closest(option, options)}; "
                f"allowed: {', '.join(options)} (conf/{group}/)"
            )


def check_wandb_mode(mode: object) -> None:
    """``logger.wandb.mode`` and ``$WANDB_MODE`` (which W&B reads itself) name a known mode."""
    check_choice("logger.wandb.mode", mode, WANDB_MODES)
    env = os.environ.get("WANDB_MODE")
    if env:
        check_choice("WANDB_MODE (environment variable)", env, WANDB_ENV_MODES)


def check_trainer_arguments(trainer: dict[str, Any], allowed: set[str]) -> None:
    """``cfg.trainer`` as Trainer arguments: a key that another group sets
    (:data:`~vae_gjs.config.keys.SET_ELSEWHERE`), or one that is not among ``allowed`` (the
    parameters of ``lightning.Trainer``, which the caller reads), is a :class:`ConfigError`."""
    for key in sorted(set(trainer) & set(SET_ELSEWHERE)):
        raise ConfigError(f"trainer.{key} is not set here; allowed: set it through {SET_ELSEWHERE[key]}")
    allowed = allowed - set(SET_ELSEWHERE)
    unknown = sorted(set(trainer) - allowed)
    if unknown:
        raise ConfigError(
            f"trainer.{unknown[0]} is not a lightning.Trainer argument{closest(unknown[0], allowed)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def check_monitors(callbacks: DictConfig, logged: set[str]) -> None:
    """A callback that watches a metric (``callbacks.checkpoint``, ``callbacks.early_stopping``:
    ``monitor=...``) must watch one of ``logged``, what the run logs at the end of its epochs: a
    :class:`ConfigError` listing them, before training (Lightning finds out after the first
    epoch, with a traceback)."""
    for name, node in callbacks.items():
        monitor = node.get("monitor") if node is not None else None
        if monitor is not None and monitor not in logged:
            raise ConfigError(
                f"callbacks.{name}.monitor={monitor} is not a metric this run logs; allowed: "
                f"{', '.join(sorted(logged))}"
            )
