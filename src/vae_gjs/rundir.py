"""The layout of a run folder, shared by training, evaluation and reports.

::

    <run_dir>/
      config.yaml        resolved configuration of the run
      status.json        {"status": running|completed|debug|failed, "error": ..., timestamps}
      results.json       final test metrics, epochs, steps, seconds per epoch
      metrics.csv        one row per epoch (logger=csv or wandb or tensorboard)
      checkpoints/       last.ckpt (every epoch) and best.ckpt
      eval.json          written by evaluate.py
      figures/           written by evaluate.py
      wandb_id           the folder's W&B run id (logger=wandb), reused when the folder resumes
      .hydra/            Hydra's record of the composition (config.yaml, hydra.yaml, overrides.yaml),
                         written by the run once it holds the folder's lock
      .lock              the lock of the process training here (vae_gjs.runlock)

A sweep folder holds its run folders and ``jobs.json``, the runs its sweeps planned
(:data:`PLAN_FILE`), so that a report can name the planned runs it lacks.

Every file is written atomically, so a folder read at any moment is consistent; the temporary
file of a write cut by a kill is removed by the next process that holds the folder's lock.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.errors import RunError
from vae_gjs.io import file_digest, temporaries, write_atomic, write_json

RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
#: The final status of a run made with a debug preset (conf/debug/): finished, but not the real run.
DEBUG = "debug"
#: The file in a run folder that keeps the folder's W&B run id (written when the run first starts).
WANDB_ID_FILE = "wandb_id"
#: The files of a run folder's top level that only the process holding its lock writes.
TRAINING_FILES = ("config.yaml", "status.json", "metrics.csv", "results.json", WANDB_ID_FILE)
#: Where a run records Hydra's composition (Hydra's own ``.hydra/``, written by the run).
COMPOSITION = ".hydra"


def corrupt(path: Path, error: BaseException) -> RunError:
    """The one-line error for a file of a run folder that cannot be parsed."""
    reason = " ".join(str(error).split())[:200]
    return RunError(
        f"{path} is corrupt ({type(error).__name__}: {reason}); delete it (train.py rewrites it on "
        "the next attempt, evaluate.py rewrites eval.json) or restore it from a backup"
    )


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object written by the platform ({} if the file is absent), or a :class:`RunError`
    naming the corrupt file."""
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise corrupt(path, error) from error
    if not isinstance(record, dict):
        raise corrupt(path, ValueError("not a JSON object"))
    return record


@dataclass(frozen=True)
class RunDir:
    """Paths and small records of one run folder."""

    path: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path))

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_ckpt(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def best_ckpt(self) -> Path:
        return self.checkpoints / "best.ckpt"

    def non_finite_ckpt(self, step: int) -> Path:
        """Where a run stopped by a non-finite loss at ``step`` keeps its weights of that step."""
        return self.checkpoints / f"nonfinite-step{step}.ckpt"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    @property
    def eval_file(self) -> Path:
        return self.path / "eval.json"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def _read_json(self, name: str) -> dict[str, Any]:
        """The JSON record ``name`` ({} if absent), or a :class:`RunError` naming a corrupt file."""
        return read_json(self.path / name)

    @property
    def status(self) -> str | None:
        return self._read_json("status.json").get("status")

    @property
    def error(self) -> str | None:
        """What failed the run (status.json's ``error``, kept only while its status is failed)."""
        return self._read_json("status.json").get("error")

    def set_status(self, status: str, **details: Any) -> None:
        record = self._read_json("status.json")
        record.update(status=status, updated=time.strftime("%Y-%m-%dT%H:%M:%S"), **details)
        if status != FAILED:
            record.pop("error", None)
        write_json(self.path / "status.json", record)

    @property
    def results(self) -> dict[str, Any]:
        return self._read_json("results.json")

    def write_results(self, results: dict[str, Any]) -> None:
        write_json(self.results_file, results)

    def write_config(self, cfg: DictConfig) -> None:
        text = OmegaConf.to_yaml(cfg, resolve=True)
        write_atomic(self.config_file, lambda handle: handle.write(text))

    def write_composition(self, task_cfg: DictConfig, hydra_cfg: DictConfig) -> None:
        """``.hydra/``: the composed config (unresolved), Hydra's own config and the command's
        overrides, as Hydra's ``run_job`` writes them (conf/train.yaml turns Hydra's writing off,
        so that a process refused by the folder's lock writes nothing)."""
        folder = self.path / COMPOSITION
        for name, node in (
            ("config.yaml", task_cfg),
            ("hydra.yaml", hydra_cfg),
            ("overrides.yaml", hydra_cfg.hydra.overrides.task),
        ):
            text = OmegaConf.to_yaml(node)
            write_atomic(folder / name, lambda handle, text=text: handle.write(text))

    def remove_stray_temporaries(self) -> list[Path]:
        """Delete the temporary files that writes cut by a kill left (training's files and its
        checkpoints; an evaluation's are its own); only for the holder of the folder's lock."""
        stray = [*temporaries(self.path, TRAINING_FILES), *temporaries(self.checkpoints)]
        for path in stray:
            path.unlink(missing_ok=True)
        return stray

    def load_config(self) -> DictConfig:
        """The run's resolved config, or a :class:`RunError` saying what is wrong with the folder."""
        if not self.path.is_dir():
            raise RunError(f"run folder {self.path} does not exist")
        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a run folder: it has no config.yaml (written by train.py)")
        try:
            cfg = OmegaConf.load(self.config_file)
        except Exception as error:  # yaml's ScannerError/ParserError, OmegaConf's, decoding errors
            raise corrupt(self.config_file, error) from error
        if not isinstance(cfg, DictConfig):
            raise corrupt(self.config_file, ValueError("not a mapping of keys to values"))
        if not cfg:
            raise corrupt(self.config_file, ValueError("the file is empty"))
        return cfg

    def stale_evaluation(self, evaluation: dict[str, Any]) -> str | None:
        """Why the eval.json record ``evaluation`` is not a measurement of the weights the run holds
        now (``None`` when it is). eval.json names the checkpoint it measured (``checkpoint``:
        file, SHA-256, global step): it is stale when that file's bytes have changed since (the run
        trained on, e.g. a report made while a sweep trained), when it does not say which
        checkpoint it measured although the run has checkpoints, or, once the checkpoints are
        deleted, when its step is not the run's final step (results.json ``steps``)."""
        measured = evaluation.get("checkpoint")
        if not isinstance(measured, dict) or not measured.get("sha256"):
            has_checkpoints = self.checkpoints.is_dir() and any(self.checkpoints.glob("*.ckpt"))
            return "eval.json does not say which checkpoint it measured" if has_checkpoints else None
        name, step = str(measured.get("file", "")), measured.get("global_step")
        path = self.path / name
        if path.is_file():
            digest = file_digest(path)
            if digest != measured["sha256"]:
                return (
                    f"eval.json measured {name} at step {step} (sha256 {measured['sha256'][:12]}), which "
                    f"has changed since (sha256 {digest[:12]})"
                )
            return None
        final = self.results.get("steps")
        if final is not None and step is not None and step != final:
            return f"eval.json measured step {step}, the run ended at step {final} ({name} is gone)"
        return None

    def checkpoint(self, which: str = "last") -> Path:
        """``last`` or ``best`` checkpoint, or a :class:`RunError` naming what is there."""
        path = self.last_ckpt if which == "last" else self.best_ckpt
        if not path.is_file():
            present = (
                sorted(p.name for p in self.checkpoints.glob("*.ckpt")) if self.checkpoints.is_dir() else []
            )
            raise RunError(
                f"{self.path} has no {which} checkpoint ({path.name}); "
                f"checkpoints present: {', '.join(present) or 'none'}"
            )
        return path


#: The ``config_version`` of conf/train.yaml that this code reads.
CONFIG_VERSION = 1


def training_picture(folder: Path, epochs_done: int, name: str) -> Path:
    """The file of the training-time picture ``name`` after ``epochs_done`` epochs
    (``figures/epoch_<NNN>_<name>.png``), for a separate run and a fused member alike."""
    return folder / f"epoch_{epochs_done:03d}_{name}.png"


def load_run_config(run: RunDir) -> DictConfig:
    """The run's config.yaml, or a :class:`RunError` for a folder that is not a run or whose
    config comes from another version of train.py."""
    cfg = run.load_config()
    version = cfg.get("config_version")
    if version != CONFIG_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > CONFIG_VERSION
        found = "has no config_version" if version is None else f"has config_version={version!r}"
        raise RunError(
            f"{run.path}: config from {'a newer' if newer else 'an older'} version of vae-gjs "
            f"(config.yaml {found}; this evaluate.py reads config_version={CONFIG_VERSION}); "
            + ("update vae-gjs" if newer else "retrain the run with the current train.py")
        )
    return cfg


def run_folders(sweep_dir: str | Path) -> list[Path]:
    """Every run folder (a folder holding a ``config.yaml``) directly inside ``sweep_dir``, sorted."""
    return sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir() and (p / "config.yaml").is_file())


#: A sweep folder's record of the runs its sweeps planned, written by the project's sweeper
#: before the first job starts; every later sweep into the folder adds its own jobs.
PLAN_FILE = "jobs.json"
#: The lock two sweeps starting into one folder take in turn to add their jobs to its plan.
PLAN_LOCK = ".jobs.lock"


@dataclass(frozen=True)
class PlannedRun:
    """A job a sweep planned: its run folder's name in the sweep folder, the cell it trains
    (``alpha`` None for a divergence without a skew) and the fingerprint of what else it trains
    with (:func:`~vae_gjs.config.runtime.setting_digest`; None in a plan written before it was
    kept)."""

    folder: str
    divergence: str
    alpha: float | None
    seed: int
    likelihood: str
    setting: str | None = None


def record_plan(sweep_dir: str | Path, runs: list[PlannedRun]) -> None:
    """Add ``runs`` to the plan of ``sweep_dir`` (:data:`PLAN_FILE`), each replacing an earlier
    entry of its folder; a corrupt plan is started anew. Sweeps that start into one folder at
    once add their jobs in turn (:data:`PLAN_LOCK`), so neither overwrites the other's."""
    path = Path(sweep_dir) / PLAN_FILE
    with open(path.with_name(PLAN_LOCK), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            earlier = read_json(path).get("runs", [])
        except RunError:
            earlier = []
        entries = {e["folder"]: e for e in earlier if isinstance(e, dict) and "folder" in e}
        entries.update({run.folder: vars(run) for run in runs})
        write_json(path, {"runs": [entries[name] for name in sorted(entries)]})


def read_plan(sweep_dir: str | Path) -> list[PlannedRun] | None:
    """The runs the sweeps into ``sweep_dir`` planned, or ``None`` where it holds no readable
    plan (folders gathered by hand, a sweep of another sweeper, a corrupt :data:`PLAN_FILE`)."""
    try:
        entries = read_json(Path(sweep_dir) / PLAN_FILE).get("runs")
        return None if entries is None else [PlannedRun(**entry) for entry in entries]
    except (RunError, TypeError):
        return None


#: What Hydra writes into a run folder before train.py starts: its record of the composition.
HYDRA_RECORDS = {".hydra": {"config.yaml", "hydra.yaml", "overrides.yaml"}}


def remove_if_unused(folder: str | Path, also: set[str], within: str | Path) -> bool:
    """Remove ``folder`` if it holds nothing but what Hydra wrote when a run started
    (:data:`HYDRA_RECORDS`) and the files named in ``also`` (the job's log, the run lock) — the
    folder of a command that was refused before it trained — and then each parent this leaves
    empty, up to ``within`` (the working directory, never removed; a folder outside it is left
    alone). Returns whether ``folder`` was removed."""
    path, root = Path(folder).resolve(), Path(within).resolve()
    if path == root or root not in path.parents or not path.is_dir():
        return False
    records = path / ".hydra"  # written only once a run holds its folder's lock: usually absent
    entries = {p.name for p in path.iterdir()}
    if not entries <= {".hydra", *also}:
        return False
    if ".hydra" in entries and (
        not records.is_dir() or not {p.name for p in records.iterdir()} <= HYDRA_RECORDS[".hydra"]
    ):
        return False
    shutil.rmtree(path)
    for parent in path.parents:
        if parent == root or any(parent.iterdir()):
            break
        parent.rmdir()
    return True


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as floats (missing cells as NaN), ordered by epoch."""
    with Path(path).open(newline="") as handle:
        return [
            {k: float(v) if v != "" else math.nan for k, v in row.items()} for row in csv.DictReader(handle)
        ]
