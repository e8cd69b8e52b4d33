"""``hydra/launcher=fused``: a Hydra launcher that trains the jobs of a sweep that differ only in
their regulariser as one fused model (``vae_gjs.fused``), groups side by side with joblib.

``launch(job_overrides, initial_job_idx)``, as every Hydra launcher:

1. every job is composed (``ConfigLoader.load_sweep_config``) and set up by Hydra's own
   ``run_job`` (output folder, ``.hydra/``, job logging) with a task that only validates and
   resolves its config (:func:`set_up_task`: ``vae_gjs.config.validate`` with ``cli``'s one-line
   errors): a bad value fails that job alone, as it would fail a separate run;
2. jobs are grouped (:mod:`vae_gjs.fused.plan`): equal configs up to the fusable keys and
   the same resume point, at most ``max_models`` a group; completed runs and jobs the engine
   cannot reproduce run as separate runs (the configured task function, through the joblib
   launcher's ``execute_job``), and so does a group of one;
3. groups run side by side (``joblib.Parallel``, loky processes; one worker runs them in this
   process, one after the other): ``n_jobs`` workers, by default chosen for the machine
   (:func:`vae_gjs.fused.plan.choose_workers`: one group per GPU, one single-threaded worker
   per CPU core), capped by the cores and the jobs with one line saying so;
4. one ``JobReturn`` per job, in the order of ``job_overrides`` (the sweeper's summary and
   ``failures.json`` read them); a member's known error is its one ``Error:`` line, as a
   separate run's (``vae_gjs.cli.as_user_error``).

Bad options (``n_jobs=0``, ``max_models=0``) are one ``Error:`` line when the sweep starts.

Nothing heavy is imported here at plugin discovery: torch and Lightning load in the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def set_up_task(cfg: DictConfig) -> DictConfig:
    """The task ``run_job`` runs for each job before training: validate the job's config as
    ``train.py`` does (a bad value is one line and fails that job), then resolve it."""
    from vae_gjs.cli import user_errors
    from vae_gjs.config.validation import validate
    from vae_gjs.fused.sweep import resolved

    with user_errors():
        validate(cfg)
        return resolved(cfg)


class FusedLauncher(Launcher):
    """Fused training of sweep jobs; ``n_jobs`` groups side by side (``None``: chosen for the
    machine), ``max_models`` per group."""

    def __init__(self, n_jobs: int | None = None, max_models: int = 32) -> None:
        self.n_jobs = n_jobs
        self.max_models = max_models
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Keep Hydra's context; check the options here rather than in ``__init__``, whose errors
        Hydra's ``instantiate`` wraps in four lines."""
        from vae_gjs.cli import outside_the_task
        from vae_gjs.config.validation import validate_fused_launcher

        with outside_the_task():
            validate_fused_launcher(self.n_jobs, self.max_models)
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from vae_gjs.cli import as_user_error, user_errors
        from vae_gjs.fused.sweep import launch_jobs

        setup_globals()
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Fused launcher (max_models={self.max_models}): {len(job_overrides)} jobs")
        for index, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + index} : {' '.join(filter_overrides(overrides))}")
        context: dict[str, Any] = {
            "hydra_context": self.hydra_context,
            "config": self.config,
            "task_function": self.task_function,
            "set_up_task": set_up_task,
            "guard": user_errors,
            "singleton_state": Singleton.get_state(),
        }
        returns = launch_jobs(context, job_overrides, initial_job_idx, self.n_jobs, self.max_models)
        assert all(isinstance(r, JobReturn) and r.status != JobStatus.UNKNOWN for r in returns)
        for job in returns:
            if job.status == JobStatus.FAILED:
                job.return_value = as_user_error(job._return_value)
        return returns
