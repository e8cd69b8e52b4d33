"""``python -m tests.reliability.writer TARGET SOURCE``: start replacing TARGET with SOURCE's bytes
through :func:`vae_gjs.io.atomic_open` (what metrics.csv, status.json and the checkpoints use),
write the first half, say ``HALF`` on stdout and wait to be killed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from vae_gjs.io import atomic_open


def main() -> None:
    target, source = Path(sys.argv[1]), Path(sys.argv[2])
    data = source.read_bytes()
    with atomic_open(target, "wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.fsync(handle.fileno())
        print("HALF", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
