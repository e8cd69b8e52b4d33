"""Hydra's basic sweeper with the changes that sweeps of this project need.

1. Float ``range()`` values are rounded to 12 significant digits: Hydra 1.3 steps a float range
   in binary floating point and yields ``alpha=0.30000000000000004``; here every job (its
   overrides, output folder, saved config and logged hparams) gets ``alpha=0.3``.
2. ``grid``: a list of ``{key: values}`` blocks; the sweep is the union of the blocks' cartesian
   products (with the command-line and ``params`` sweeps applied to every block), duplicates
   removed. Table 1 is ``{divergence: gjs,dgjs, alpha: range(0.1,1,0.1)}`` plus a block of
   baselines that do not multiply with α. Two jobs with the same overrides in another order
   (a command line pinning one cell matches several blocks) are one job: one config, one folder.
3. A failed job does not stop the sweep: every batch is launched, then a summary of the
   failures is written to ``<sweep_dir>/failures.json`` and raised as one compact error.
4. Every job's config is checked before the first job starts (:func:`vae_gjs.cli.refused_jobs`:
   train.py's validation, and no ``alpha`` sweep over a divergence without a skew): a bad point
   is one line, the sweep exits with 1, and nothing is trained or written, whatever the launcher.
   Each config file is parsed once for all the jobs (:func:`config_files_parsed_once`).
   ``hydra.sweeper.dry_run=true`` stops there: every job checked and listed with its run folder.
   Otherwise the jobs are added to the sweep folder's plan (``jobs.json``,
   :func:`vae_gjs.rundir.record_plan`): a report names the planned runs it lacks.
5. SIGTERM or Ctrl-C stops the sweep: the running jobs stop (keeping their last.ckpt), the jobs
   after them are not run, the summary and ``failures.json`` are written, and the process exits
   with 128 + the signal's number. Jobs in worker processes (joblib, ``cpu_pair``) are sent the
   signal and stop with the sweep (:mod:`vae_gjs.signals`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.config_repository import ConfigRepository
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import FloatRange, Override
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.config_source import ConfigResult
from omegaconf import OmegaConf

from vae_gjs import signals
from vae_gjs.errors import StorageError
from vae_gjs.io import write_json
from vae_gjs.rundir import PlannedRun, record_plan

log = logging.getLogger(__name__)


class SweepFailed(CompactHydraException):
    """Some jobs of a sweep failed; the others ran to the end."""


def tidy_float(text: str) -> str:
    """``"0.30000000000000004"`` -> ``"0.3"`` (12 significant digits, shortest repr)."""
    return repr(float(f"{float(text):.12g}"))


def _describe(error: BaseException) -> str:
    """A failed job's error on one line; compact (user-facing) errors need no class name."""
    text = " ".join(str(error).split())
    return text if isinstance(error, CompactHydraException) else f"{type(error).__name__}: {text}"


def _is_float_range(override: Override) -> bool:
    return override.is_range_sweep() and isinstance(override.value().range(), FloatRange)


class VaeGjsSweeper(BasicSweeper):
    """Basic sweeper + rounded float ranges + grid unions + jobs checked first + failure isolation."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: Mapping[str, str] | None = None,
        grid: Sequence[Mapping[str, Any]] | None = None,
        dry_run: bool = False,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=dict(params or {}))
        self.grid = [dict(block) for block in grid or [{}]]
        self.dry_run = dry_run

    def _jobs(self, overrides: list[Override]) -> list[list[str]]:
        """The cartesian product of ``overrides`` with float ranges rounded."""
        float_keys = {o.get_key_element() for o in overrides if _is_float_range(o)}
        jobs = []
        for job in BasicSweeper.split_arguments(overrides, None)[0]:
            tidy = []
            for item in job:
                key, _, value = item.partition("=")
                tidy.append(f"{key}={tidy_float(value)}" if key in float_keys else item)
            jobs.append(tidy)
        return jobs

    def split_arguments(  # type: ignore[override]
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        seen: set[frozenset[str]] = set()  # a job's overrides in any order: one config, one folder
        jobs: list[list[str]] = []
        for block in self.grid:
            block_overrides = parser.parse_overrides([f"{key}={value}" for key, value in block.items()])
            by_key = {o.get_key_element(): o for o in block_overrides}
            by_key.update({o.get_key_element(): o for o in overrides})  # command line wins
            for job in self._jobs(list(by_key.values())):
                if frozenset(job) not in seen:
                    seen.add(frozenset(job))
                    jobs.append(job)
        size = max_batch_size if max_batch_size and max_batch_size > 0 else max(len(jobs), 1)
        return [jobs[i : i + size] for i in range(0, len(jobs), size)]

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        jobs = [job for batch in self.overrides for job in batch]
        folders, planned = self._refuse_bad_jobs(jobs)
        if self.dry_run:
            print(f"Dry run: {len(jobs)} jobs checked; nothing was run or written:")
            for job, folder in zip(jobs, folders, strict=True):
                print(f"  {folder}  <-  {' '.join(job)}")
            return []
        # The sweep folder may use ${hydra:runtime.choices...} (conf/experiment/table1.yaml):
        # resolve it against the multirun's own config.
        HydraConfig.instance().set_config(self.config)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        record_plan(sweep_dir, planned)
        log.info(f"Sweep of {sum(map(len, self.overrides))} jobs into {sweep_dir}")

        returns: list[Sequence[JobReturn]] = []
        stopped: list[list[str]] = []  # jobs whose outcome a signal left unknown (worker processes)
        unstarted: list[list[str]] = []  # jobs a signal kept from starting
        initial_job_idx = 0
        signals.install()
        signals.mark_sweep_process()
        in_process = isinstance(self.launcher, BasicLauncher)  # its jobs stop themselves (run_task)
        while not self.is_done():
            # no validate_batch_is_legal: _refuse_bad_jobs composed every job before the first
            # (it composed each job again, 0.2-0.4 s a job)
            batch = self.get_job_batch()
            # in the sweep's own process a batch is launched job by job, so that after a signal
            # the jobs left are neither composed nor given a folder only to be told so
            for part in [[job] for job in batch] if in_process else [batch]:
                if signals.received() is not None:
                    unstarted.extend(part)
                    continue
                try:
                    with contextlib.nullcontext() if in_process else signals.stopping(forward=True):
                        results = self.launcher.launch(part, initial_job_idx=initial_job_idx)
                except BaseException:  # a second signal, or workers that died of the first
                    if signals.received() is None:
                        raise
                    stopped.extend(part)
                    continue
                finally:
                    initial_job_idx += len(part)
                returns.append(results)
        report_failures(sweep_dir, [r for results in returns for r in results], stopped, unstarted)
        return returns

    def _refuse_bad_jobs(self, jobs: list[list[str]]) -> tuple[list[str], list[PlannedRun]]:
        """Exit with 1 and one line per bad job before anything runs or is written, if any
        job's config would be refused; else the jobs' run folders and the cells they train."""
        from vae_gjs.cli import exit_if_refused, refused_jobs

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        folders: list[str] = []
        planned: list[PlannedRun] = []
        with config_files_parsed_once():
            refused = refused_jobs(
                jobs, lambda job: loader.load_sweep_config(self.config, job), folders, planned
            )
        exit_if_refused(refused, f"this sweep of {len(jobs)} jobs")
        return folders, planned


@contextlib.contextmanager
def config_files_parsed_once() -> Iterator[None]:
    """Within the block, each config file that Hydra composes a job from is read and parsed once and
    handed to every composition as its own deep copy. Hydra reads and parses every file again for
    each job (about 23 files, half of the 0.4 s it took to check one job of Table 1's sweep on a
    2-core AMD EPYC); a deep copy costs a tenth of a parse. The cache is keyed by the search path
    and the file, and gone when the block ends."""
    load = ConfigRepository.load_config
    parsed: dict[tuple[str, ...], ConfigResult | None] = {}

    def load_once(repository: ConfigRepository, config_path: str) -> ConfigResult | None:
        key = (*(source.full_path() for source in repository.sources), config_path)
        if key not in parsed:
            parsed[key] = load(repository, config_path)
        return copy.deepcopy(parsed[key])

    ConfigRepository.load_config = load_once  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConfigRepository.load_config = load  # type: ignore[method-assign]


def report_failures(
    sweep_dir: Path,
    results: list[JobReturn],
    stopped: list[list[str]],
    unstarted: Sequence[list[str]] = (),
) -> None:
    """After a sweep: with failed, stopped or (after a signal) unstarted jobs, ``failures.json``
    and one line per job, then a compact error (exit 1) or, after a signal, exit 128 + its number;
    without, an earlier attempt's ``failures.json`` is removed."""
    failed = [r for r in results if r.status == JobStatus.FAILED]
    if not failed and not stopped and not unstarted:  # an earlier attempt's record no longer holds
        (sweep_dir / "failures.json").unlink(missing_ok=True)
        return
    records = [
        {
            "overrides": list(r.overrides or []),
            "run_dir": r.hydra_cfg.hydra.runtime.output_dir if r.hydra_cfg is not None else None,
            "error": _describe(r._return_value),
        }
        for r in failed
    ]
    why = signals.describe(SystemExit())
    records += [
        {"overrides": job, "run_dir": None, "error": f"the sweep was {why} while this job ran or waited"}
        for job in stopped
    ]
    records += [
        {"overrides": job, "run_dir": None, "error": f"Error: {signals.not_started()}"} for job in unstarted
    ]
    details = f"details in {sweep_dir / 'failures.json'}"
    try:
        write_json(sweep_dir / "failures.json", records)
    except StorageError as error:  # a full disk: the summary below is then the only record
        details = f"failures.json not written: {error}"
    lines = [f"  {' '.join(rec['overrides'])}: {rec['error']}" for rec in records]
    total = len(results) + len(stopped) + len(unstarted)
    others = "the others finished; " if len(records) < total else ""
    if signals.received() is not None:
        print(
            f"Sweep {why}: {len(records)} of {total} jobs did not complete ({details}; the same "
            "command resumes them):\n" + "\n".join(lines),
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(signals.exit_code())
    raise SweepFailed(f"{len(records)} of {total} jobs failed ({others}{details}):\n" + "\n".join(lines))


__all__ = ["SweepFailed", "VaeGjsSweeper", "report_failures", "tidy_float"]
