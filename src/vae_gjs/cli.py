"""The entry points and what they share: the Hydra apps ``train`` and ``evaluate``
(``python train.py``, ``python evaluate.py`` in a clone; ``vae-gjs-train``, ``vae-gjs-evaluate``
once installed: :func:`train_main`, :func:`evaluate_main`), composed from the configs shipped with
the package (``pkg://vae_gjs.conf``); validation, then import and run the task; one-line errors;
signals.

Each task is imported inside its function, after validation, so ``--help`` and bad values
answer before torch and Lightning load (~7 s).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.errors import CompactHydraException, InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from vae_gjs import signals
from vae_gjs.config.evaluate import validate_evaluate
from vae_gjs.config.resolvers import register_resolvers
from vae_gjs.config.runtime import planned_setting
from vae_gjs.config.validation import (
    alpha_sweeps_without_skew,
    check_nested_keys,
    check_override_keys,
    validate,
)
from vae_gjs.errors import USER_ERRORS, ConfigError, Interrupted, StorageError
from vae_gjs.io import check_creatable
from vae_gjs.rundir import WANDB_ID_FILE, PlannedRun, remove_if_unused
from vae_gjs.runlock import LOCK_FILE


class UserError(CompactHydraException):
    """Printed by Hydra as its message alone, without a traceback."""


def one_line(message: str) -> str:
    """``message`` on one line: messages quoted from libraries (torchvision's failed download
    lists every mirror on its own line) are joined with spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def quoted_paths(
    args: list[str],
    keys: tuple[str, ...] = ("run_dir", "sweep_dir", "table1_dir", "data_dir"),
    marks: str = "=,[]{}() ",
) -> list[str]:
    """Command-line ``args`` with each unquoted path value of ``keys`` that holds one of ``marks``
    quoted for Hydra's override grammar: a sweep job's folder (``.../alpha=0.3,divergence=gjs``)
    holds ``=`` and ``,``, which Hydra would otherwise refuse with a grammar error that names
    neither. (``train.py`` quotes only values with ``=``: ``-m ckpt_path=a.ckpt,b.ckpt`` still sweeps.)"""
    quoted = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in keys and value[:1] not in ("'", '"') and any(c in value for c in marks):
            arg = f"{key}='" + value.replace("'", "\\'") + "'"
        quoted.append(arg)
    return quoted


def exit_in_one_line(message: str) -> NoReturn:
    """Print ``message`` (``Error: ...``) alone on stderr and exit with status 1."""
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(1) from None


@contextmanager
def outside_the_task() -> Iterator[None]:
    """Errors found outside the task Hydra runs (before it composes, or before it makes the
    output folder): one line and exit status 1; ``HYDRA_FULL_ERROR=1`` shows the traceback."""
    try:
        yield
    except (ConfigError, StorageError) as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        exit_in_one_line(f"Error: {error}")


def refuse_unknown_keys(
    args: Sequence[str], conf_dir: Path, config_name: str, added_groups: Sequence[str] = ()
) -> None:
    """Before Hydra starts: an override of a key the config does not have (``divergnce=gjs``,
    ``optim.lrr=0.1``) or of an option its group does not have (``dataset=fashion``) is one line
    naming the closest (:func:`vae_gjs.config.check_override_keys`, ``check_nested_keys``)."""
    with outside_the_task():
        check_override_keys(args, conf_dir, config_name, added_groups)
        check_nested_keys(args, config_name)


class WritableOutput(Callback):
    """A Hydra callback (conf/train.yaml, ``hydra.callbacks``): before Hydra creates the run's
    folder (``hydra.run.dir``) or the sweep's (``hydra.sweep.dir``) and opens its log there,
    check that it can, making and writing nothing (:func:`vae_gjs.io.check_creatable`): a
    folder inside a read-only one is one line naming it, not Hydra's traceback, and a command
    refused later leaves no folder behind."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "sweep")

    @staticmethod
    def _check(config: DictConfig, mode: str) -> None:
        from hydra.core.hydra_config import HydraConfig

        # the folder's name reads ${hydra:runtime...}; set_config makes its argument's hydra node
        # read-only, so it is given a copy
        HydraConfig.instance().set_config(copy.deepcopy(config))
        with outside_the_task():
            check_creatable(Path(str(config.hydra[mode].dir)))


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and "MULTIRUN" in str(HydraConfig.get().mode)


def as_user_error(error: BaseException) -> BaseException:
    """A known user-facing error (also one raised in a constructor that Hydra's ``instantiate``
    wraps) as the :class:`UserError` that prints its one line; any other error unchanged."""
    cause = error.__cause__ if isinstance(error, InstantiationException) else error
    if isinstance(cause, USER_ERRORS):
        return UserError(f"Error: {one_line(str(cause))}")
    return error


@contextmanager
def user_errors() -> Iterator[None]:
    """A known user-facing error (also one raised in a constructor that Hydra's ``instantiate``
    wraps) becomes one line on stderr and a non-zero exit (a failed job in a sweep);
    ``HYDRA_FULL_ERROR=1`` shows the traceback instead.

    SIGTERM and Ctrl-C (:mod:`vae_gjs.signals`): a single run ends with exit code 128 + the
    signal's number and one line saying what is kept; in a sweep the job fails with that line,
    and the jobs after it fail at once without starting (leaving no folder of their own behind).
    """
    signals.watch_sweep_process()
    try:
        if signals.received() is not None:
            forget_refused_run()
            raise Interrupted(signals.not_started())
        with signals.stopping():
            yield
    except (*USER_ERRORS, InstantiationException) as error:
        compact = as_user_error(error)
        if compact is error or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise compact from error
    except (Interrupted, SystemExit, KeyboardInterrupt) as error:
        if signals.received() is None:
            raise
        message = f"Error: {error if isinstance(error, Interrupted) else signals.describe(error)}"
        if _in_sweep():
            raise UserError(message) from error
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(signals.exit_code()) from None


def forget_refused_run() -> None:
    """A refused single run, or a sweep's job that a signal stopped before it started, writes
    nothing: the run folder Hydra made for it is removed if it holds only Hydra's own records
    (:func:`~vae_gjs.rundir.remove_if_unused`), with the parent folders this leaves empty, up to
    the working directory (a single run) or the sweep's folder (a job)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        also = {f"{hydra_cfg.job.name}.log", LOCK_FILE, WANDB_ID_FILE}
        within = hydra_cfg.sweep.dir if _in_sweep() else os.getcwd()
        remove_if_unused(hydra_cfg.runtime.output_dir, also, within)


def entry(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """What an entry point's ``@hydra.main`` function runs: ``task(cfg)``. A user-facing error of
    a single run is printed as its one line and the process exits with 1, without the lines Hydra
    frames an error with (``Error executing job ...`` before, the ``HYDRA_FULL_ERROR`` hint
    after), leaving no run folder behind (:func:`forget_refused_run`); in a sweep it fails the
    job, and the sweep summarises its failures."""
    try:
        return task(cfg)
    except UserError as error:
        if _in_sweep():
            raise
        forget_refused_run()
        exit_in_one_line(str(error))


def check_precision_here(cfg: DictConfig) -> None:
    """``precision=bf16`` needs native bfloat16 units on the device ``trainer.accelerator`` names
    here (:func:`~vae_gjs.models.precision.check_precision`): refused before Lightning loads and
    before anything is written, for a single run and, before the first job starts, for every job
    of a sweep that runs on this machine. float32 asks nothing of the machine (nor imports torch)."""
    if cfg.precision != "bf16":
        return
    from vae_gjs.hardware import choose_device
    from vae_gjs.models.precision import check_precision

    check_precision(cfg.precision, choose_device("trainer.accelerator", str(cfg.trainer.accelerator)))


def train(cfg: DictConfig) -> float | None:
    """train.py: validate ``cfg``, then train (:func:`vae_gjs.tasks.train.train`)."""
    with user_errors():
        validate(cfg)
        check_precision_here(cfg)
        from vae_gjs.tasks.train import train as run

        return run(cfg)


def evaluate(cfg: DictConfig) -> Any:
    """evaluate.py: validate ``cfg`` (and a single run folder), then evaluate or report
    (:func:`vae_gjs.tasks.evaluate.evaluate`)."""
    with user_errors():
        validate_evaluate(cfg)
        from vae_gjs.tasks.evaluate import evaluate as run

        return run(cfg)


def refused_jobs(
    jobs: Sequence[Sequence[str]],
    compose: Callable[[list[str]], DictConfig],
    folders: list[str] | None = None,
    planned: list[PlannedRun] | None = None,
) -> list[str]:
    """The jobs of a sweep that ``train.py`` would refuse, checked before the first one starts:
    one line per bad job (``<its overrides>: <why>``), and one per set of jobs that differ only
    in an ``alpha`` their divergence does not use (:func:`~vae_gjs.config.alpha_sweeps_without_skew`).
    A job its launcher runs on this machine (every launcher but submitit's SLURM, whose jobs run on
    a cluster's nodes) is also checked against this machine (:func:`check_precision_here`).
    ``compose`` gives a job's config with its ``hydra`` node (the sweeper's config loader);
    Hydra's global config is set to each job's while it is checked, and restored after. Each good
    job's run folder is appended to ``folders`` if given, and the cell it trains to ``planned``."""
    from hydra.core.hydra_config import HydraConfig

    previous = HydraConfig.instance().cfg
    lines, divergences = [], []
    try:
        for number, job in enumerate(jobs):
            try:
                cfg = compose(list(job))
                with open_dict(cfg):
                    cfg.hydra.job.num = number
                HydraConfig.instance().set_config(cfg)
                task_cfg = cfg.copy()
                with open_dict(task_cfg):
                    del task_cfg["hydra"]
                validate(task_cfg, warn=False)
                if not str(cfg.hydra.launcher.get("_target_")).endswith("SlurmLauncher"):
                    check_precision_here(task_cfg)
                if folders is not None:
                    folders.append(str(Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)))
                if planned is not None:
                    skew = task_cfg.divergence.get("alpha")
                    planned.append(
                        PlannedRun(
                            folder=str(cfg.hydra.sweep.subdir),
                            divergence=str(cfg.hydra.runtime.choices.get("divergence")),
                            alpha=None if skew is None else float(skew),
                            seed=int(task_cfg.seed),
                            likelihood=str(task_cfg.likelihood),
                            setting=planned_setting(task_cfg),
                        )
                    )
            except Exception as error:  # a composition error of Hydra or OmegaConf, or a ConfigError
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                lines.append(f"{' '.join(job)}: {one_line(str(error))}" if job else one_line(str(error)))
                continue
            choice = str(cfg.hydra.runtime.choices.get("divergence"))
            divergences.append((job, choice, "alpha" in task_cfg.divergence))
    finally:
        if previous is not None:
            HydraConfig.instance().set_config(previous)
    return lines + alpha_sweeps_without_skew(divergences)


def exit_if_refused(refused: list[str], what: str) -> None:
    """With lines in ``refused`` (:func:`refused_jobs`), print them under one heading naming
    ``what`` was refused and exit with 1, before anything runs or is written."""
    if refused:
        lines = "\n".join(f"  {line}" for line in refused)
        print(f"Error: {what} is refused; nothing was run:\n{lines}", file=sys.stderr, flush=True)
        raise SystemExit(1)


#: Where the apps compose their configs from: the package ``vae_gjs.conf`` (the clone's conf/).
CONFIG_PATH = "pkg://vae_gjs.conf"
CONF_DIR = Path(__file__).resolve().parent / "conf"


def run_app(config_name: str, task: Callable[[DictConfig], Any]) -> Any:
    """Run ``task`` as the Hydra app of ``conf/<config_name>.yaml`` on the command line's
    arguments (unquoted paths of sweep folders quoted first, :func:`quoted_paths`)."""
    register_resolvers()

    @hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base="1.3")
    def main(cfg: DictConfig) -> Any:
        return entry(task, cfg)

    return main()


def train_main() -> None:
    """``python train.py`` / ``vae-gjs-train``: train a VAE (``-m`` to sweep)."""
    signals.install()  # a SIGTERM while Hydra starts is recorded: the run then stops with exit 143
    # a checkpoint in a sweep job's folder (``.../alpha=0.3,divergence=gjs/...``) needs no quoting
    sys.argv[1:] = quoted_paths(sys.argv[1:], keys=("ckpt_path",), marks="=")
    refuse_unknown_keys(sys.argv[1:], CONF_DIR, "train", added_groups=("experiment",))
    run_app("train", train)


def evaluate_main() -> None:
    """``python evaluate.py`` / ``vae-gjs-evaluate``: evaluate a run or a sweep, or report."""
    sys.argv[1:] = quoted_paths(sys.argv[1:])  # a sweep job's folder holds '=' and ','
    refuse_unknown_keys(sys.argv[1:], CONF_DIR, "evaluate")
    run_app("evaluate", evaluate)
