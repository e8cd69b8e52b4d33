"""Experiment loggers: the run folder's own ``metrics.csv`` and Weights & Biases that never blocks."""

from __future__ import annotations

import csv
import logging
import os
import secrets
import socket
import string
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from vae_gjs.config.validation import check_wandb_mode
from vae_gjs.errors import RunError
from vae_gjs.io import atomic_open, write_atomic
from vae_gjs.rundir import WANDB_ID_FILE, corrupt

log = logging.getLogger(__name__)


class AtomicCSVLogger(Logger):
    """One row per epoch in ``metrics.csv``, the whole file rewritten atomically on each update.

    Rows are keyed by epoch: when a run resumes and repeats an epoch, its row is replaced, so
    the file never has duplicated or missing epochs. Rows of a previous (killed) attempt that
    lie after the resumed epoch are dropped at the first write.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.rows: dict[int, dict[str, Any]] = {}
        self._resumed_from: int | None = None
        if self.path.is_file():
            try:
                with self.path.open(newline="") as handle:
                    for row in csv.DictReader(handle):
                        self.rows[int(row["epoch"])] = {k: v for k, v in row.items() if v != "" and k}
            except (ValueError, KeyError, TypeError, csv.Error, UnicodeDecodeError) as error:
                raise corrupt(self.path, error) from error

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters live in the run folder's ``config.yaml``; nothing to add here."""

    def start_epoch(self, epoch: int) -> None:
        """Forget rows from ``epoch`` on (a resumed run repeats them)."""
        self.rows = {e: row for e, row in self.rows.items() if e < epoch}

    def restore_row(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        """Put back the row of ``epoch`` (from its checkpoint) if the file lacks it: a kill came
        after the epoch's checkpoint and before its row."""
        if epoch not in self.rows:
            self.log_metrics({**metrics, "epoch": epoch}, step)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if "epoch" not in metrics:
            return
        epoch = int(metrics["epoch"])
        row = self.rows.setdefault(epoch, {"epoch": epoch})
        row["step"] = step
        for key, value in metrics.items():
            if key != "epoch":
                row[key] = float(value)
        self._write()

    def _write(self) -> None:
        columns = [
            "epoch",
            "step",
            *sorted({k for row in self.rows.values() for k in row} - {"epoch", "step"}),
        ]
        with atomic_open(self.path, "w") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for epoch in sorted(self.rows):
                writer.writerow(self.rows[epoch])


def _has_wandb_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


#: Seconds a W&B server has to accept a connection before the run decides it is unreachable.
CONNECT_TIMEOUT = 2.0


def _reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT) -> bool:
    if not host:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _server(url: str) -> tuple[str, int]:
    """Host and port of a W&B server URL (``http://localhost:8080`` -> ``("localhost", 8080)``;
    without a port, 443 for https and 80 for http)."""
    parts = urlsplit(url if "://" in url else f"https://{url}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or (80 if parts.scheme == "http" else 443)


def resolve_wandb_mode(mode: str = "auto") -> str:
    """``auto``: ``$WANDB_MODE`` if set; ``online`` with an API key and a reachable server;
    otherwise ``offline`` (no prompt, no 90-second stall). Sync offline runs later with
    ``wandb sync <run_dir>/wandb/offline-run-*``. A mode forced to ``online`` (argument or
    ``$WANDB_MODE``) whose server does not answer within :data:`CONNECT_TIMEOUT` seconds is a
    one-line :class:`RunError` (W&B itself would retry for minutes, then raise)."""
    check_wandb_mode(mode)
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    forced = mode if mode != "auto" else os.environ.get("WANDB_MODE")
    if forced == "online" and not _reachable(*_server(url)):
        raise RunError(
            f"W&B mode is online but the server {url} did not answer within {CONNECT_TIMEOUT:g} s; "
            "use WANDB_MODE=offline (upload later with `wandb sync`) or logger.wandb.mode=auto, or "
            "check the network"
        )
    if forced:
        return forced
    if _has_wandb_key() and _reachable(*_server(url)):
        return "online"
    log.info("W&B: no API key or no network, logging offline (sync later with `wandb sync`)")
    return "offline"


def new_wandb_id() -> str:
    """A random W&B run id: 8 characters of ``[a-z0-9]``, as ``wandb`` makes them."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def wandb_run_id(run_dir: str | os.PathLike[str]) -> str:
    """The W&B run id of ``run_dir``: the one stored in ``<run_dir>/wandb_id`` when the folder
    resumes, otherwise a fresh random id, stored there (by rank 0) for later resumes.

    A fresh id per new folder (rather than one derived from the path) means that deleting and
    re-running a sweep, or the same path on another machine, opens a new W&B run instead of
    appending to an old one. Under ``wandb agent`` (a W&B sweep) the new id is the agent's
    ``$WANDB_RUN_ID``."""
    path = Path(run_dir) / WANDB_ID_FILE
    if path.is_file():
        return path.read_text().strip()
    run_id = os.environ.get("WANDB_RUN_ID") or new_wandb_id()  # a `wandb agent` sets the id of its trial
    if rank_zero_only.rank == 0:
        write_atomic(path, lambda handle: handle.write(run_id + "\n"))
    return run_id


def wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    mode: str = "auto",
    fresh_id: bool = False,
    quiet: bool = False,
    **kwargs: Any,
) -> Logger | None:
    """A :class:`~lightning.pytorch.loggers.WandbLogger` whose mode never blocks (see
    :func:`resolve_wandb_mode`). The run id is the run folder's (:func:`wandb_run_id`), so a
    resumed run continues the same W&B run; ``fresh_id`` gives a new, unstored id instead (an
    evaluation or report run beside the training run). ``mode=disabled`` returns no logger.
    ``quiet``: none of W&B's own console lines (its banner, links and summary). Other keyword
    arguments go to ``WandbLogger`` (``log_model``) and ``wandb.init`` (``job_type``, ``config``, ...)."""
    resolved = resolve_wandb_mode(mode)
    if resolved == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    if quiet:
        import wandb

        kwargs["settings"] = wandb.Settings(silent=True)

    logger = WandbLogger(
        project=project,
        save_dir=save_dir,
        name=name,
        group=group,
        tags=list(tags or []),
        id=new_wandb_id() if fresh_id else wandb_run_id(save_dir),
        resume="allow",
        mode=resolved,
        **kwargs,
    )
    # Lightning always passes anonymous=None, which W&B >= 0.19 answers on every run with
    # "The anonymous setting has no effect and will be removed": pass nothing instead.
    logger._wandb_init.pop("anonymous", None)
    return logger


def finish_wandb() -> None:
    """Close the current W&B run, if any, so the next one opens its own."""
    if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
        sys.modules["wandb"].finish()
