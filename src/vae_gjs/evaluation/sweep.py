"""Evaluate every run of a sweep folder, one failure not stopping the others. torch (through
:mod:`vae_gjs.evaluation.runner`) is imported only when a run needs evaluating: a report of runs
already evaluated reads their files alone."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vae_gjs.errors import ConfigError, RunError
from vae_gjs.rundir import COMPLETED, RunDir, read_json, run_folders
from vae_gjs.runlock import holder

log = logging.getLogger(__name__)


def kept_for_report(run: RunDir, checkpoint: str = "last") -> str | None:
    """Why a report evaluates the completed run ``run`` (again), or ``None`` when its eval.json is
    kept: an eval.json is taken whatever other options it was evaluated with (e.g. by its own
    training job, ``evaluate=true``), as long as it measured the report's ``checkpoint`` (last:
    the final weights) as the run holds it now (:meth:`~vae_gjs.rundir.RunDir.stale_evaluation`);
    a corrupt one counts as absent; ``""``: there is none yet."""
    try:
        evaluation = read_json(run.eval_file)
    except RunError:
        return "eval.json is corrupt"
    if not evaluation:
        return ""
    measured = evaluation.get("checkpoint")
    which = measured.get("which", checkpoint) if isinstance(measured, dict) else checkpoint
    if which != checkpoint:
        return f"eval.json measured the {which} checkpoint, the report shows the {checkpoint} one"
    return run.stale_evaluation(evaluation)


def evaluate_sweep(folder: str | Path, cfg: DictConfig, for_report: bool = False) -> list[dict[str, Any]]:
    """Evaluate every run folder of the sweep ``folder``, skipping the done ones (unless
    ``force``) and the ones a live process is still training (their last.ckpt is a moving
    target: evaluate them when they end, or one by one with ``run_dir=``); a failing run does not
    stop the others, and the failures are reported together at the end as one :class:`RunError`.

    ``for_report``: only completed runs are evaluated (a report shows no other), each one whose
    eval.json is missing, corrupt or of other weights than the run's now (:func:`kept_for_report`;
    ``force``: every one); failures are only logged: the report lists the runs it lacks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"sweep folder {folder} does not exist")
    runs = run_folders(folder)
    if not runs:
        if (folder / "config.yaml").is_file():
            raise RunError(f"{folder} is a run folder, not a sweep: use run_dir={folder}")
        raise RunError(f"{folder} holds no run folders (subfolders with a config.yaml written by train.py)")
    records, failures, kept, training, unfinished = [], [], 0, 0, 0
    for number, path in enumerate(runs, 1):
        pid = holder(path)
        if pid is not None:
            training += 1
            log.info(f"[{number}/{len(runs)}] {path.name}: still training (pid {pid}), not evaluated")
            continue
        try:
            why = ""
            if for_report:
                run = RunDir.at(path)
                if run.status != COMPLETED:
                    unfinished += 1
                    log.info(
                        f"[{number}/{len(runs)}] {path.name}: status {run.status}, left out of the report"
                    )
                    continue
                why = "" if cfg.force else kept_for_report(run, cfg.checkpoint)
                if why is None:
                    kept += 1
                    continue
            log.info(f"[{number}/{len(runs)}] {path.name}" + (f": {why}; evaluating it" if why else ""))
            from vae_gjs.evaluation.runner import evaluate_run

            records.append(evaluate_run(path, cfg, redo=bool(why)))
        except Exception as error:
            if not isinstance(error, (RunError, ConfigError)):
                log.exception(f"{path.name} failed")
            failures.append(f"{path.name}: {error}")
            log.error(f"{path.name} failed: {error}")
    if failures and not for_report:
        raise RunError(f"{len(failures)} of {len(runs)} runs failed: " + " | ".join(failures))
    log.info(
        f"Evaluated {len(runs) - kept - training - unfinished - len(failures)} runs in {folder}, "
        f"{len(failures)} failed, {kept} kept, {training} still training"
        + (f", {unfinished} not completed" if unfinished else "")
    )
    return records
