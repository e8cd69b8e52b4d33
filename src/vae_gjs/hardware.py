"""The machine, decided in one place: what its CPU can do, read without torch (``conf/`` resolves
``precision`` with it before anything heavy is imported: native bfloat16 units, the cores this
process may use), how many threads a task runs (:func:`use_threads`), and which device an option
names (:func:`choose_device`). torch is imported only inside the functions that need it."""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from vae_gjs.errors import ConfigError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

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


def usable_threads(threads: int) -> int:
    """``threads``, capped (with a warning) at the CPU cores this process may use: more threads
    than cores only make the threads wait for each other (4.5x slower measured on 2 cores)."""
    cores = usable_cores()
    if threads > cores:
        log.warning(f"threads={threads} is more than the {cores} CPU cores available; using threads={cores}")
        return cores
    return threads


def use_threads(threads: int | None) -> None:
    """torch's intra-op threads for a task: ``threads`` capped by :func:`usable_threads`; ``None``
    (or 0) leaves torch's default. The one place train.py, evaluate.py and a fused group set it."""
    if threads:
        import torch

        torch.set_num_threads(usable_threads(threads))


def choose_device(key: str, name: str, hint: str | None = None) -> torch.device:
    """The device the option ``key`` (``trainer.accelerator``, ``device``) names: ``auto`` is the
    current CUDA device where there is one, else the CPU; ``gpu``, ``cuda`` or ``cuda:<index>``
    need a CUDA device (else a :class:`ConfigError` ending with ``hint``, by default the values
    allowed here); anything else is the CPU."""
    import torch

    available = torch.cuda.is_available()
    if name == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if available else torch.device("cpu")
    if name not in ("gpu", "cuda") and not name.startswith("cuda:"):
        return torch.device("cpu")
    if not available:
        raise ConfigError(
            f"{key}={name} but this machine has no GPU (torch.cuda.is_available() is False); "
            f"{hint or f'use {key}=cpu or auto'}"
        )
    index = torch.device(name).index if name.startswith("cuda:") else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"{key}={name} but there are {count} CUDA devices; allowed: cuda:0 to cuda:{count - 1}"
        )
    return torch.device("cuda", index)
