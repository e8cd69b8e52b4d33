"""What this machine's CPU can do, read without torch (``conf/`` resolves ``precision`` with it
before anything heavy is imported): whether it has native bfloat16 units, how many cores this
process may use."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic: AVX-512 BF16 (AMD Zen 4 and later,
#: Intel Cooper Lake and later) and AMX-BF16 (Intel Sapphire Rapids and later). Without either,
#: oneDNN emulates bfloat16 in float32 units, slower than float32 itself.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@cache
def cpu_flags() -> frozenset[str]:
    """The flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none: not Linux)."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))


def cpu_bf16_units() -> list[str]:
    """The native bfloat16 units this CPU has (of :data:`BF16_FLAGS`), e.g. ``["avx512_bf16"]``."""
    return [flag for flag in BF16_FLAGS if flag in cpu_flags()]


def fastest_cpu_precision() -> str:
    """``bf16`` where the CPU has native bfloat16 units, else ``fp32`` (budget=cpu's choice)."""
    return "bf16" if cpu_bf16_units() else "fp32"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or ``taskset``'s share,
    not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
