"""``hparams_search=optuna``: hydra-optuna-sweeper's sweeper with the promises of the project's
own (:mod:`.sweeper`).

* ``hydra.sweeper.n_trials`` below 1 is one ``Error:`` line when the search starts (Optuna would
  search nothing and fail with a traceback asking for the best of no trials);
* SIGTERM or Ctrl-C during a trial stops the search like any sweep: the trial stops at the end
  of its current step (its last.ckpt kept, its status saying why), the summary and
  ``failures.json`` are written, and the process exits with 128 + the signal's number (it used
  to exit 1 with Hydra's wrapper of the trial's error, and no ``failures.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig

from hydra_plugins.vae_gjs_sweeper.sweeper import report_failures
from vae_gjs import signals


class VaeGjsOptunaSweeper(OptunaSweeper):
    """Optuna's sweeper, its trials' returns recorded for the summary of a stopped search."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Check ``n_trials`` (here, not in ``__init__``, whose errors Hydra wraps in four lines),
        set Optuna's sweeper up and record every trial its launcher runs."""
        from vae_gjs.cli import outside_the_task
        from vae_gjs.errors import check_int

        with outside_the_task():
            check_int("hydra.sweeper.n_trials", self.sweeper.n_trials, 1)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.config = config
        self.returns: list[JobReturn] = []
        launcher = self.sweeper.launcher
        launch = launcher.launch

        def recorded(job_overrides: Any, initial_job_idx: int) -> Any:
            returns = launch(job_overrides, initial_job_idx=initial_job_idx)
            self.returns.extend(returns)
            return returns

        launcher.launch = recorded  # type: ignore[method-assign]

    def sweep(self, arguments: list[str]) -> None:
        signals.install()
        signals.mark_sweep_process()
        try:
            return super().sweep(arguments)
        except BaseException:
            if signals.received() is None:
                raise
            report_failures(Path(str(self.config.hydra.sweep.dir)), self.returns, [])
            raise  # report_failures exits with 128 + the signal's number
