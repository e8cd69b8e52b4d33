"""The work of ``hydra/launcher=fused`` (``hydra_plugins.vae_gjs_fused_launcher``): set every job
up with Hydra's ``run_job``, choose the workers for the machine, group the fusable ones, run
groups and separate runs with joblib, and answer one ``JobReturn`` per job."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.errors import CompactHydraException
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf, open_dict

from vae_gjs.fused.plan import choose_workers, describe_plan, plan
from vae_gjs.hardware import usable_cores
from vae_gjs.rundir import RunDir

log = logging.getLogger(__name__)


def resolved(cfg: DictConfig) -> DictConfig:
    """``cfg`` with every interpolation resolved (``run_dir``, ``run_name``, ``group`` read
    Hydra's per-job values, which exist only while ``run_job`` runs the job)."""
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))


def set_up_job(context: dict[str, Any], overrides: Sequence[str], index: int) -> JobReturn:
    """Compose job ``index`` like Hydra's launchers do and let ``run_job`` make its folder,
    ``.hydra/`` and log, running ``context["set_up_task"]`` (validate, then :func:`resolved`):
    the returned ``JobReturn`` holds the resolved config, or the error that fails the job."""
    hydra_context = context["hydra_context"]
    sweep_config = hydra_context.config_loader.load_sweep_config(context["config"], list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{index}"
        sweep_config.hydra.job.num = index
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        task_function=context["set_up_task"],
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


def _log_to_members(hydra_cfgs: Sequence[DictConfig]) -> None:
    """The group's log goes to the console and into every member's ``<job name>.log``."""
    configure_log(hydra_cfgs[0].hydra.job_logging, hydra_cfgs[0].hydra.verbose)
    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if isinstance(h, logging.FileHandler)), None)
    for hydra_cfg in hydra_cfgs[1:]:
        handler = logging.FileHandler(
            Path(hydra_cfg.hydra.runtime.output_dir) / f"{hydra_cfg.hydra.job.name}.log"
        )
        handler.setFormatter(
            formatter or logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
        )
        root.addHandler(handler)


def cuda_devices(configs: Sequence[DictConfig]) -> int:
    """The CUDA devices the jobs ``configs`` train on (0: the CPU), as
    :func:`vae_gjs.hardware.choose_device` chooses for ``trainer.accelerator``."""
    if any(str(cfg.trainer.accelerator) == "cpu" for cfg in configs):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def run_group(
    context: dict[str, Any],
    cfgs: Sequence[DictConfig],
    task_cfgs: Sequence[DictConfig],
    hydra_cfgs: Sequence[DictConfig],
    device: int | None = None,
) -> list[Any]:
    """Train ``cfgs`` as one fused model (in a joblib worker, or in the sweep's process), under
    ``context["guard"]`` (``vae_gjs.cli.user_errors``, as a separate run's job: signals recorded,
    the worker stopped with its sweep, known errors as one line); on CUDA device ``device``.
    Once a member's folder is held, its ``.hydra/`` is written and its log opened. Returns per
    member its result or error."""
    setup_globals()
    Singleton.set_state(context["singleton_state"])
    from vae_gjs.fused.group import train_group

    def on_held(members: list[int]) -> None:
        for index in members:
            RunDir.at(cfgs[index].run_dir).write_composition(task_cfgs[index], hydra_cfgs[index])
        _log_to_members([hydra_cfgs[index] for index in members])

    try:
        with context["guard"]():
            if device is not None:
                import torch

                torch.cuda.set_device(device)
            return train_group(cfgs, on_held)
    except Exception as error:  # the whole group failed (data, memory, a signal, ...): every member did
        if isinstance(error, CompactHydraException):
            log.error(str(error))
        else:
            log.exception("the fused group failed")
        return [error] * len(cfgs)


def run_single(context: dict[str, Any], overrides: Sequence[str], index: int) -> JobReturn:
    """A separate run, exactly as the joblib launcher runs a job."""
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    return execute_job(
        index,
        overrides,
        context["hydra_context"],
        context["config"],
        context["task_function"],
        context["singleton_state"],
    )


def launch_jobs(
    context: dict[str, Any],
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    n_jobs: int | None,
    max_models: int,
) -> list[JobReturn]:
    """Set up, plan and run ``job_overrides``; one ``JobReturn`` per job, in order."""
    returns = [
        set_up_job(context, overrides, initial_job_idx + i) for i, overrides in enumerate(job_overrides)
    ]
    configs = [r.return_value if r.status == JobStatus.COMPLETED else None for r in returns]
    live = [cfg for cfg in configs if cfg is not None]
    if not live:
        return returns
    devices = cuda_devices(live)
    job_threads = max((int(cfg.threads) for cfg in live if cfg.threads), default=None)
    workers = choose_workers(n_jobs, len(live), usable_cores(), devices, job_threads)
    if workers.note:
        log.warning(workers.note)
    groups = plan(configs, max_models, workers.count)
    log.info(describe_plan(groups, workers, devices, n_jobs))
    overrides = [list(job) for job in job_overrides]
    if workers.threads:  # several workers on a CPU: each its share of the cores
        for index, cfg in enumerate(configs):
            if cfg is not None and cfg.threads is None:
                cfg.threads = workers.threads
                overrides[index].append(f"threads={workers.threads}")
    for group in groups:
        if len(group) > 1:
            log.info(
                f"Fused group of {len(group)}: {', '.join(Path(configs[i].run_dir).name for i in group)}"
            )

    def task(number: int, group: list[int]) -> Any:
        if len(group) == 1:
            index = group[0]
            return delayed(run_single)(context, overrides[index], initial_job_idx + index)
        return delayed(run_group)(
            context,
            [configs[i] for i in group],
            [returns[i].cfg for i in group],
            [returns[i].hydra_cfg for i in group],
            number % devices if devices else None,
        )

    parallel = Parallel(n_jobs=min(workers.count, len(groups)), backend="loky")
    outcomes = parallel(task(number, group) for number, group in enumerate(groups))
    for group, outcome in zip(groups, outcomes, strict=True):
        if len(group) == 1:
            returns[group[0]] = outcome
            continue
        for index, value in zip(group, outcome, strict=True):
            returns[index].return_value = value
            returns[index].status = (
                JobStatus.FAILED if isinstance(value, BaseException) else JobStatus.COMPLETED
            )
    return returns
