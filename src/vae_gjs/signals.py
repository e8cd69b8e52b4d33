"""SIGTERM and Ctrl-C: a run stops cleanly, says why in its status.json, and the process ends with
the shell's code for the signal (128 + its number: 143 for SIGTERM, 130 for Ctrl-C), so SLURM,
submitit and shell scripts see a failure, not success.

Inside ``trainer.fit`` Lightning's own SIGTERM handler runs first (it stops the loop at the next
step and raises ``SIGTERMException``, a ``SystemExit`` without a code) and then calls ours, which
only records the signal. A loop of our own that stops at the end of its current step (a fused
group's) runs inside :func:`polled`: the first signal is only recorded, and the loop asks
:func:`received` after every step. Elsewhere, ours raises :class:`Terminated` while a task runs
(:func:`stopping`), and only records it otherwise (between the jobs of a sweep).

Sweep jobs run in worker processes (``hydra/launcher=cpu_pair``) stop with the sweep: the sweep
process forwards the signal to its workers (:func:`forward_to_workers`) and waits for their
jobs to report (a second signal stops it at once), and a worker whose sweep process disappeared
(SIGKILL, which cannot be forwarded) sends SIGTERM to itself (:func:`watch_sweep_process`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

#: The environment variable through which sweep workers learn the sweep process's pid.
SWEEP_PID_ENV = "VAE_GJS_SWEEP_PID"
NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT (Ctrl-C)"}

_received: list[int] = []
_raising = threading.Event()
_forwarding = threading.Event()
_polling = threading.Event()


class Terminated(SystemExit):
    """A SIGTERM outside Lightning's loops (data loading, testing, evaluation, a sweep's wait)."""


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if _forwarding.is_set() and len(_received) == 1:
        forward_to_workers(signum)  # their jobs stop, report, and the sweep writes its summary
        return
    if _polling.is_set() and len(_received) == 1:
        return  # the loop stops at the end of its current step; a second signal stops it at once
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    # Inside trainer.fit, Lightning's composed handler calls this one after setting its own flag:
    # the loop stops at the next step. Otherwise nobody else will stop the work: stop now.
    if _raising.is_set() and signal.getsignal(signal.SIGTERM) is _handler:
        raise Terminated(exit_code())
    if not _raising.is_set() and os.environ.get(SWEEP_PID_ENV) not in (None, str(os.getpid())):
        signal.signal(signum, signal.SIG_DFL)  # an idle sweep worker: nothing to record, end now
        os.kill(os.getpid(), signum)


def install() -> None:
    """Record SIGTERM and SIGINT (idempotent; only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in NAMES:
        if signal.getsignal(signum) is not _handler:
            signal.signal(signum, _handler)


@contextlib.contextmanager
def stopping(forward: bool = False) -> Iterator[None]:
    """While the block runs, a SIGTERM outside Lightning raises :class:`Terminated` at once;
    with ``forward`` (a sweep waiting for its workers), the first signal is sent on to the
    workers (:func:`forward_to_workers`) and the second raises. A block without ``forward``
    inside one with it (a job that a launcher runs in the sweep's own process: the fused
    launcher with one worker) stops at once, as in a basic sweep: there is no worker to wait for."""
    install()
    flags = (_raising, _forwarding)
    was_set = [flag.is_set() for flag in flags]
    _raising.set()
    if forward:
        _forwarding.set()
    else:
        _forwarding.clear()
    try:
        yield
    finally:
        for flag, was in zip(flags, was_set, strict=True):
            if was:
                flag.set()
            else:
                flag.clear()


@contextlib.contextmanager
def polled() -> Iterator[None]:
    """While the block runs, the first SIGTERM or Ctrl-C is only recorded: the block's loop
    stops at the end of its current step by asking :func:`received`."""
    install()
    was_set = _polling.is_set()
    _polling.set()
    try:
        yield
    finally:
        if not was_set:
            _polling.clear()


def received() -> int | None:
    """The first SIGTERM/SIGINT this process received, or ``None``."""
    return _received[0] if _received else None


def exit_code() -> int:
    """128 + the received signal's number (the shell's convention), 1 if none was received."""
    signum = received()
    return 128 + signum if signum is not None else 1


def describe(error: BaseException) -> str:
    """Why a run stopped, for its status.json: the signal if one was received, else the error."""
    signum = received()
    if signum is not None:
        return f"stopped by {NAMES.get(signum, signal.Signals(signum).name)}"
    if isinstance(error, SystemExit) and os.environ.get("SUBMITIT_EXECUTOR") == "slurm":
        # submitit's handler of SLURM's preemption/timeout signal: it has requeued the job
        return (
            "stopped by SLURM (preempted or out of time); submitit requeued the job, which resumes "
            "from last.ckpt"
        )
    return f"{type(error).__name__}: {error}".rstrip(": ")


def not_started() -> str:
    """What a sweep's job that a signal kept from starting says (``not run: stopped by SIGTERM
    before it started``)."""
    return f"not run: {describe(SystemExit())} before it started"


def forward_to_workers(signum: int) -> None:
    """Send ``signum`` to this process's child processes except joblib's resource tracker (which
    cleans up after the workers)."""
    import psutil

    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if not any("resource_tracker" in part for part in child.cmdline()):
                child.send_signal(signum)


def mark_sweep_process() -> None:
    """Tell the workers started from now on which process is the sweep's."""
    os.environ[SWEEP_PID_ENV] = str(os.getpid())


def watch_sweep_process(interval: float = 1.0, grace: float = 120.0) -> None:
    """In a sweep worker (another process than the sweep's): when the sweep process is gone
    (killed with SIGKILL, which cannot be forwarded), SIGTERM itself so that its job stops and
    records its status, then exit (after at most ``grace`` seconds): no job outlives its sweep."""
    sweep_pid = int(os.environ.get(SWEEP_PID_ENV) or os.getpid())
    if sweep_pid == os.getpid() or getattr(watch_sweep_process, "started", False):
        return
    watch_sweep_process.started = True  # type: ignore[attr-defined]

    def watch() -> None:
        while _alive(sweep_pid):
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _raising.is_set() and time.monotonic() < deadline:  # the job records its status
            time.sleep(interval)
        os._exit(exit_code())  # nobody is left to give this worker another job

    threading.Thread(target=watch, name="watch-sweep-process", daemon=True).start()


def _alive(pid: int) -> bool:
    """``pid`` runs (a killed process not yet reaped by its parent is a zombie: not running)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
