"""What a person reads when a run starts: where it writes, and no library advertisements."""

from __future__ import annotations

import logging
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
