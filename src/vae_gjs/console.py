"""What a person reads when a task runs: where it writes, the libraries' messages once, and no
library advertisements (:func:`quiet_library_logs`, the one place train.py, evaluate.py and a
fused group quiet them)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

#: Loggers through which Lightning prints its rank-zero messages (the name depends on import order).
LIGHTNING_RANK_ZERO = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class DropTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ... try installing litlogger" advertisement, printed on every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def drop_library_tips() -> None:
    """Install :class:`DropTips` on Lightning's rank-zero loggers (idempotent)."""
    for name in LIGHTNING_RANK_ZERO:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropTips) for f in logger.filters):
            logger.addFilter(DropTips())


def announce_run_folder(path: Path) -> None:
    """Log (console and train.log) the absolute run folder as the run starts."""
    log.info(f"Run folder: {path.resolve()}")


def quiet_library_logs() -> None:
    """Let Hydra's handlers (console + the run's log file) print Lightning's messages once, drop
    Lightning's tips (:func:`drop_library_tips`), a deprecation warning Lightning raises from its
    own internals and its logging-interval hint for short epochs, and drop a log line the disk
    refuses (``train.log`` on a full disk) instead of printing logging's traceback: what a run
    writes itself is named in its one ``Error:`` line."""
    logging.raiseExceptions = False
    if logging.getLogger().handlers:
        lightning_logger = logging.getLogger("lightning")
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # Lightning's advice for a short epoch: this project logs its metrics once an epoch, and the
    # step loss at its own log_every_n_steps, so the hint to lower the Trainer's does not apply
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    drop_library_tips()
