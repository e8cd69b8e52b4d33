"""The configuration's one home before anything heavy is imported: the names a user can choose,
the ``vae_gjs.*`` resolvers of ``conf/``, and the validation of train.py's and evaluate.py's
configs (one-line :class:`~vae_gjs.errors.ConfigError` for every value a user is likely to get
wrong). Imports neither torch nor Lightning, so ``--help`` and bad values answer at once."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from vae_gjs.datadir import default_data_dir
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
from vae_gjs.hardware import fastest_cpu_precision, usable_cores
from vae_gjs.provenance import provenance
from vae_gjs.rundir import RunDir, load_run_config

#: Decoder likelihoods (the classes: :mod:`vae_gjs.models.likelihoods`).
LIKELIHOODS = ("gaussian", "bernoulli")
#: Reports that load the sweep's models (written by :mod:`vae_gjs.tasks.evaluate`).
MODEL_REPORTS = ("fig4",)
#: Reports of a sweep (the writers of the others: :mod:`vae_gjs.reports.write`).
REPORTS = ("table1", "fig3", "fig5", "learned_alpha", "likelihood", *MODEL_REPORTS)
#: The arithmetic of a run's network (:mod:`vae_gjs.models.precision`).
PRECISIONS = ("fp32", "bf16")
#: What train.py can return (``objective``): a final metric of the test or the validation split.
OBJECTIVES = ("test/rec", "test/loss", "val/rec", "val/loss")
#: Checkpoints and splits an evaluation can use.
CHECKPOINTS = ("best", "last")
SPLITS = ("test", "train", "val")

#: numpy's bound: ``np.random.seed`` (which Lightning seeds) takes 0 <= seed <= 2**32 - 1.
SEED_MAX = 2**32 - 1
#: ``logger.wandb.mode`` values; ``$WANDB_MODE`` may hold the last three (``dryrun`` is offline).
WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB_ENV_MODES = ("online", "offline", "disabled", "dryrun")
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- resolvers


#: Defaults of conf/train.yaml (``seed``, ``optim.lr``) and conf/model/burgess.yaml
#: (``model.latent_dim``): a run name mentions these values only where they differ.
DEFAULT_SEED, DEFAULT_LATENT_DIM, DEFAULT_LR = 1234, 10, 1e-4


def run_name(
    dataset: str,
    divergence: str,
    divergence_cfg: Any,
    lam: Any,
    seed: Any,
    latent_dim: Any = DEFAULT_LATENT_DIM,
    lr: Any = DEFAULT_LR,
) -> str:
    """A readable run name naming what differs from the defaults, e.g. ``mnist-gjs-a0.2``,
    ``fmnist-beta_vae-l4`` or ``mnist-kl_qp-s7-z32-lr0.0003``."""
    name = f"{dataset}-{divergence}"
    if isinstance(divergence_cfg, DictConfig) and "alpha" in divergence_cfg:
        name += f"-a{divergence_cfg.alpha:g}" if isinstance(divergence_cfg.alpha, (int, float)) else ""
        name += "-learned" if divergence_cfg.get("learn_alpha") is True else ""
    for prefix, value, default in (
        ("l", lam, 1),
        ("s", seed, DEFAULT_SEED),
        ("z", latent_dim, DEFAULT_LATENT_DIM),
    ):
        if isinstance(value, (int, float)) and value != default:
            name += f"-{prefix}{value:g}"
    if isinstance(lr, (int, float)) and not math.isclose(lr, DEFAULT_LR):
        name += f"-lr{lr:g}"
    return name


def recorded_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` resolved, as a run records it (config.yaml, the loggers' hyperparameters), with
    ``alpha: null`` when the divergence has no skew: a dashboard's α axis must not put KL(q‖p),
    KL(p‖q), β-VAE or MMD runs at the unused default 0.5."""
    recorded = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if "alpha" not in recorded.divergence:
        recorded.alpha = None
    return recorded


def logged_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """What a run gives its loggers as hyperparameters (the W&B config): its config as recorded
    (:func:`recorded_config`) and, under ``provenance``, the git commit and package versions."""
    hparams = OmegaConf.to_container(recorded_config(cfg))
    assert isinstance(hparams, dict)
    return {**hparams, "provenance": provenance()}


def group_name(mode: Any, sweep_dir: str) -> str:
    """The W&B group of a run: its sweep folder for ``-m`` runs, ``single`` otherwise."""
    if "MULTIRUN" not in str(mode):
        return "single"
    return re.sub(r"[^\w.=-]+", "-", str(sweep_dir)).strip("-")[-120:]


#: The longest name of a folder most file systems take, in bytes (``NAME_MAX``).
NAME_MAX = 255


def sweep_subdir(override_dirname: str, job_num: Any) -> str:
    """A job's folder inside a sweep: its overrides (``alpha=0.3``), or ``job<N>`` if it has none.
    A name longer than :data:`NAME_MAX` bytes (a fused sweep with ``evaluate=true`` and a few
    ``eval.*`` overrides reaches it) keeps its beginning and ends with a digest of the whole, so
    the same job gets the same folder again (a re-run resumes it)."""
    name = override_dirname.replace("/", "_") if override_dirname else f"job{job_num}"
    encoded = name.encode()
    if len(encoded) <= NAME_MAX:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    return f"{encoded[: NAME_MAX - len(digest) - 1].decode(errors='ignore')}~{digest}"


def monitor(val_size: Any) -> str:
    """The loss that checkpoints and early stopping watch: ``val/loss`` when the run holds out a
    validation split (``dataset.val_size > 0``), else ``train/loss``."""
    return "val/loss" if isinstance(val_size, int) and val_size > 0 else "train/loss"


def register_resolvers() -> None:
    """Register the ``vae_gjs.*`` resolvers used in ``conf/`` (idempotent)."""
    resolvers = (
        ("run_name", run_name),
        ("group", group_name),
        ("subdir", sweep_subdir),
        ("data_dir", default_data_dir),
        ("monitor", monitor),
        ("cpu_precision", fastest_cpu_precision),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(f"vae_gjs.{name}"):
            OmegaConf.register_new_resolver(f"vae_gjs.{name}", fn)


# --------------------------------------------------------------------------- train.py


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


# --------------------------------------------------------------------------- evaluate.py


def validate_eval_options(opts: DictConfig) -> None:
    """Check the evaluation options of conf/eval/default.yaml, whether they come from
    evaluate.py (top-level keys) or from train.py (``eval.*``)."""
    check_choice("checkpoint", opts.checkpoint, CHECKPOINTS)
    splits = opts.splits
    if not isinstance(splits, (list, ListConfig)):
        raise ConfigError(
            f"splits={splits!r} is not a list; allowed: a list of {', '.join(SPLITS)}, e.g. [train,test]"
        )
    for split in splits:
        check_choice("splits", split, SPLITS)
    for name in ("k", "n_batches", "batch_size", "bootstrap"):
        check_positive_int(name, opts[name])
    check_int("seed", opts.seed, 0)
    check_int("traversal_image", opts.traversal_image, 0)
    check_positive_real("traversal_range", opts.traversal_range)
    device = opts.device
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device={device!r} is unknown; allowed: auto, cpu, cuda, cuda:<index>")
    if opts.rec_batches is not None:
        check_positive_int("rec_batches", opts.rec_batches)
    if opts.threads is not None:
        check_positive_int("threads", opts.threads)
    check_bool("figures", opts.figures)
    check_choice("precision", opts.precision, PRECISIONS)
    evidence_likelihoods(opts.get("evidence_likelihood"), LIKELIHOODS[0])


def evidence_likelihoods(option: Any, own: str) -> list[str]:
    """The decoder likelihoods of ``evidence_likelihood``: null is the run's ``own`` training
    likelihood, a name is that one, a list is each (the first is the headline ``test/log_px``)."""
    if option is None:
        return [own]
    names = [option] if isinstance(option, str) else list(option)
    if not names:
        raise ConfigError(
            "evidence_likelihood=[] is empty; allowed: null, gaussian, bernoulli or a list of them"
        )
    for name in names:
        check_choice("evidence_likelihood", name, LIKELIHOODS)
    return list(dict.fromkeys(names))


def validate_evaluate(cfg: DictConfig) -> None:
    """Check evaluate.py's config (conf/evaluate.yaml) and, for one run, its folder: a config of
    this version and the chosen checkpoint (cheap checks, before torch loads)."""
    if cfg.get("report") is not None:
        check_choice("report", cfg.report, REPORTS)
        if cfg.get("sweep_dir") is None:
            raise ConfigError(f"report={cfg.report} needs sweep_dir=<folder of run folders>")
    if cfg.get("table1_dir") is not None and cfg.get("report") not in ("learned_alpha", "likelihood"):
        raise ConfigError(
            f"table1_dir={cfg.table1_dir} is only used by report=learned_alpha and report=likelihood; "
            f"allowed with report={cfg.get('report')}: table1_dir=null"
        )
    if (cfg.get("run_dir") is None) == (cfg.get("sweep_dir") is None):
        raise ConfigError(
            "give exactly one of run_dir=<run folder> or sweep_dir=<folder of run folders>, "
            "e.g. `python evaluate.py run_dir=outputs/mnist-gjs-a0.5/2026-01-01_12-00-00`"
        )
    validate_eval_options(cfg)
    check_bool("force", cfg.force)
    if cfg.run_dir is not None:
        run = RunDir.at(cfg.run_dir)
        load_run_config(run)
        run.checkpoint(cfg.checkpoint)


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


def limited_batches(key: str, batches: int, limit: Any) -> int:
    """The batches of an epoch of ``batches`` under Lightning's ``limit_*_batches`` option ``key``
    (an int caps, a float is a fraction, null is all). A fraction that leaves no batch is a
    :class:`ConfigError` (Lightning refuses it in the middle of ``fit``); 0 or 0.0 is no batch."""
    if limit is None:
        return batches
    if isinstance(limit, int):
        return min(batches, limit)
    limited = int(batches * limit)
    if limited == 0 and limit > 0:
        raise ConfigError(
            f"{key}={limit!r} leaves no batch of the {batches} ({limit!r} x {batches} < 1); allowed: 0 "
            f"(none), a fraction >= {1 / batches:.2g} or a number of batches >= 1"
        )
    return limited


#: Groups whose config may take keys added with ``+``: Trainer arguments (checked against
#: ``lightning.Trainer``), arguments of the ``_target_`` class, and logger settings.
EXTENSIBLE = ("trainer", "divergence", "model", "dataset", "logger", "callbacks")


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


def check_override_keys(args: Sequence[str], conf_dir: Path, config_name: str) -> None:
    """Refuse, before Hydra composes, an override without ``+`` whose first key is neither a key
    of ``conf/<config_name>.yaml`` nor a config group (a typo: ``divergnce=gjs``), naming the
    closest; Hydra itself says only ``Could not override 'divergnce'`` in four lines. A mistyped
    key deeper down (``optim.lrr=0.1``) is still refused by Hydra's struct mode."""
    import yaml

    top = yaml.safe_load((conf_dir / f"{config_name}.yaml").read_text()) or {}
    groups = sorted(path.name for path in conf_dir.iterdir() if path.is_dir() and path.name != "hydra")
    names = {key for key in top if key != "defaults"} | set(groups) | {"hydra"}
    for arg in args:
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        first = key.split("@")[0].split(".")[0].split("/")[0]
        if first not in names:
            raise ConfigError(
                f"{key} is not a key of this config{closest(first, names)}; allowed: the keys that "
                f"`python {config_name}.py --cfg job` lists and the config groups ({', '.join(groups)})"
            )
        if key in groups and value in ("null", "None", ""):  # Hydra: a ValueError's traceback
            options = sorted(path.stem for path in (conf_dir / key).glob("*.yaml"))
            raise ConfigError(
                f"{key}={value} is not allowed: {key} is a config group; allowed: one of its options "
                f"({', '.join(options)}), or {key}.<entry>=null to drop one of its entries"
            )


def check_wandb_mode(mode: object) -> None:
    """``logger.wandb.mode`` and ``$WANDB_MODE`` (which W&B reads itself) name a known mode."""
    check_choice("logger.wandb.mode", mode, WANDB_MODES)
    env = os.environ.get("WANDB_MODE")
    if env:
        check_choice("WANDB_MODE (environment variable)", env, WANDB_ENV_MODES)


def usable_threads(threads: int) -> int:
    """``threads``, capped (with a warning) at the CPU cores this process may use: more threads
    than cores only make the threads wait for each other (4.5x slower measured on 2 cores)."""
    cores = usable_cores()
    if threads > cores:
        log.warning(f"threads={threads} is more than the {cores} CPU cores available; using threads={cores}")
        return cores
    return threads
