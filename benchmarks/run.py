"""Throughput benchmark of the training and evaluation paths (``make bench``; not part of the tests).

Measured in one process run, each case repeated after a warm-up, medians reported:

1. ``real``: images/s of train.py's own path — ``vae_gjs.tasks.train.train`` with the composed
   config (LightningModule + DataModule + Trainer, CSV logging and checkpoints on);
2. ``bare``: the same model, loss and batches in a plain PyTorch loop (no Lightning, no Hydra,
   no logging): the floor the platform is compared against;
3. ``eval``: reconstruction with z = μ and importance-sampled log p(x) with K = 128;
4. ``startup``: wall time of ``python train.py ... trainer.max_steps=1`` to exit, and of ``--help``;
5. ``memory``: peak resident memory of a process running (1);
6. ``ops`` (only when asked): the ATen calls a step of (1) makes beyond (2), per precision;
7. ``gemm``: GFLOP/s of a 1024³ matrix product in each precision, what the cores reach on the
   densest kernel there is: (1) and (2) are also given in GFLOP/s (a step's FLOPs counted by
   ``torch.utils.flop_counter``) and as a share of it;
8. ``layers`` (only when asked): each layer's forward in (2), ms a step and GFLOP/s, per precision;
9. ``primitives`` (only when asked): each oneDNN primitive a step of (2) executes (convolutions
   forward, data and weight gradients; bf16 matrix products), ms a step by oneDNN's own verbose
   timing, per precision, and the rest of the step (what oneDNN does not run).

Writes a table to stdout and JSON to ``benchmarks/results/<name>.json`` (atomically).

    python benchmarks/run.py                    # everything, 1 and 2 threads
    python benchmarks/run.py --only real bare --threads 1 --steps 300
    python benchmarks/run.py --only ops --no-save     # what the path adds to a step, fp32 and bf16
    python benchmarks/run.py --only layers gemm --threads 1   # where a step's forward is slow
    python benchmarks/run.py --only primitives --no-save      # which kernels a step's time goes to
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from tests.conftest import DATA_DIR, compose_train  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from vae_gjs.data import MNIST, InMemoryBatches  # noqa: E402
from vae_gjs.io import write_json  # noqa: E402

BATCH = 64
#: The cases ``--only`` names (the module docstring's list).
CASES = ("real", "bare", "eval", "startup", "memory", "ops", "gemm", "layers", "primitives")


class AfterWarmup(Callback):
    """Calls :meth:`begin` once, at the start of training step ``warmup``."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.begun = False

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup and not self.begun:
            self.begun = True
            self.begin()

    def begin(self) -> None:
        raise NotImplementedError


class StepTimer(AfterWarmup):
    """Wall time of training steps ``warmup`` .. end, batch fetch included (the real loop)."""

    def __init__(self, warmup: int) -> None:
        super().__init__(warmup)
        self.start: float | None = None
        self.end = 0.0
        self.steps = 0

    def begin(self) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.start is not None:
            self.end = time.perf_counter()
            self.steps += 1


class StepProfiler(AfterWarmup):
    """``torch.profiler`` over training steps ``warmup`` .. end (the real loop's whole step)."""

    def __init__(self, warmup: int) -> None:
        super().__init__(warmup)
        self.profiler = profile(activities=[ProfilerActivity.CPU])

    def begin(self) -> None:
        self.profiler.__enter__()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.profiler.__exit__(None, None, None)


def _train_path(
    steps: int,
    warmup: int,
    threads: int,
    workdir: Path,
    compile_net: bool,
    precision: str,
    callback: Callback,
) -> None:
    """``train()`` (train.py's task) for ``warmup + steps`` steps in a fresh run folder under
    ``workdir``, with ``callback``."""
    from vae_gjs.tasks.train import train

    cfg = compose_train(
        [
            "logger=csv",
            f"data_dir={DATA_DIR}",
            f"trainer.max_steps={warmup + steps}",
            "test=false",
            f"threads={threads}",
            f"compile={str(compile_net).lower()}",
            f"precision={precision}",
        ],
        run_dir=Path(tempfile.mkdtemp(dir=workdir)),
    )
    train(cfg, callbacks=[callback])


def real_path(
    steps: int, warmup: int, threads: int, workdir: Path, compile_net: bool = False, precision: str = "fp32"
) -> float:
    """Images/s of ``train()`` (train.py's task) between step ``warmup`` and ``warmup + steps``,
    in a fresh run folder under ``workdir``."""
    timer = StepTimer(warmup)
    _train_path(steps, warmup, threads, workdir, compile_net, precision, timer)
    assert timer.start is not None and timer.steps == steps, (timer.steps, steps)
    return steps * BATCH / (timer.end - timer.start)


def _mnist() -> MNIST:
    dm = MNIST(root=str(DATA_DIR), download=False, batch_size=BATCH)
    dm.setup()
    return dm


#: The parts of a bare step, timed one after the other (a CPU computes synchronously).
PARTS = ("data", "encode", "decode", "loss", "backward", "adam")


def _bare_setup(threads: int, compile_net: bool, precision: str) -> tuple[Any, Any, Any]:
    """The module, optimiser and MNIST batches of a bare loop, built as a run on this device builds
    them (its layers in their training form, its optimiser)."""
    from vae_gjs.module import build_module

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = compose_train([f"data_dir={DATA_DIR}", f"precision={precision}"])
    module = build_module(cfg.module, (1, 32, 32))
    module.on_fit_start()  # the layers and the optimiser a fit on this device uses
    optimiser = module.configure_optimizers()
    if compile_net:
        module.net.compile()
    return module, optimiser, iter(InMemoryBatches(_mnist().splits["train"], BATCH, shuffle=True, seed=0))


def _bare_step(module: Any, optimiser: Any, batches: Any, precision: str) -> list[float]:
    """One step of the bare loop; the ``perf_counter`` ticks around each of :data:`PARTS`: the
    net's layers in ``precision``, everything else in float32, as a run computes them."""
    from vae_gjs.models.precision import network_outputs

    net, divergence, likelihood = module.net, module.divergence, module.likelihood
    ticks = [time.perf_counter()]
    x, _ = next(batches)
    ticks.append(time.perf_counter())
    mu, logvar = network_outputs(precision, "cpu", net.encode, x)
    ticks.append(time.perf_counter())
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = network_outputs(precision, "cpu", net.decode, z)
    ticks.append(time.perf_counter())
    loss = likelihood.loss(logits, x).mean() + divergence(mu, logvar).mean()
    ticks.append(time.perf_counter())
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    ticks.append(time.perf_counter())
    optimiser.step()
    ticks.append(time.perf_counter())
    return ticks


def step_flop() -> float:
    """FLOPs an image costs in one training step: the net's convolutions and matrix products,
    forward and backward, as ``torch.utils.flop_counter`` counts them (the same in every precision)."""
    module, optimiser, batches = _bare_setup(1, False, "fp32")
    with FlopCounterMode(display=False) as counter:
        _bare_step(module, optimiser, batches, "fp32")
    return counter.get_total_flops() / BATCH


#: The size of the matrix product that measures what the cores reach (``gemm``).
GEMM_N = 1024


def gemm_rate(threads: int, precision: str, seconds: float = 2.0) -> float:
    """GFLOP/s of a ``GEMM_N``³ matrix product in ``precision`` at ``threads``, timed for about
    ``seconds`` after a warm-up."""
    torch.set_num_threads(threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    a, b = torch.randn(GEMM_N, GEMM_N).to(dtype), torch.randn(GEMM_N, GEMM_N).to(dtype)
    for _ in range(3):  # warm-up
        torch.mm(a, b)
    calls, tick = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - tick) < seconds:
        torch.mm(a, b)
        calls += 1
    return 2 * GEMM_N**3 * calls / elapsed / 1e9


def layer_forwards(steps: int, warmup: int, precision: str) -> dict[str, dict[str, Any]]:
    """Each layer of the net (its leaf modules, in their training form) in the bare loop at one
    thread: its ``kind`` (class), its forward's ``ms`` a step (timed by hooks around the call,
    inside the real step) and ``gflop_per_s`` (FLOPs by ``torch.utils.flop_counter`` on the input
    it was given; 0 for a layer without products)."""
    from vae_gjs.models.precision import autocast

    module, optimiser, batches = _bare_setup(1, False, precision)
    layers = {name: layer for name, layer in module.net.named_modules() if not any(layer.children())}
    inputs: dict[str, tuple[Any, ...]] = {}
    hooks = [
        layer.register_forward_pre_hook(lambda _, args, name=name: inputs.setdefault(name, args))
        for name, layer in layers.items()
    ]
    _bare_step(module, optimiser, batches, precision)
    flop = {}
    for name, layer in layers.items():
        with autocast(precision, "cpu"), FlopCounterMode(display=False) as counter:
            layer(*(value.detach() for value in inputs[name]))
        flop[name] = counter.get_total_flops()
    for hook in hooks:
        hook.remove()
    ticks: dict[str, float] = {}
    seconds = dict.fromkeys(layers, 0.0)

    def begin(name: str) -> None:
        ticks[name] = time.perf_counter()

    def end(name: str) -> None:
        seconds[name] += time.perf_counter() - ticks[name]

    for name, layer in layers.items():
        layer.register_forward_pre_hook(lambda *_, name=name: begin(name))
        layer.register_forward_hook(lambda *_, name=name: end(name))
    for step in range(warmup + steps):
        if step == warmup:
            seconds = dict.fromkeys(layers, 0.0)
        _bare_step(module, optimiser, batches, precision)
    return {
        name: {
            "kind": type(layer).__name__,
            "ms": 1e3 * seconds[name] / steps,
            "gflop_per_s": flop[name] * steps / seconds[name] / 1e9,
        }
        for name, layer in layers.items()
    }


def layer_rows(args: argparse.Namespace, results: dict[str, Any]) -> list[tuple[str, str]]:
    """``--only layers``: :func:`layer_forwards` for every precision (medians of the repeats,
    precisions alternated), a row per layer."""
    runs = [
        {precision: layer_forwards(args.steps, args.warmup, precision) for precision in args.precision}
        for _ in range(args.repeats)
    ]
    measured: dict[str, dict[str, dict[str, Any]]] = {}
    rows = []
    for name in runs[0][args.precision[0]]:
        cells = []
        for precision in args.precision:
            values = {
                "kind": runs[0][precision][name]["kind"],
                **{
                    key: statistics.median(run[precision][name][key] for run in runs)
                    for key in ("ms", "gflop_per_s")
                },
            }
            measured.setdefault(name, {})[precision] = values
            rate = f" {values['gflop_per_s']:.0f} GFLOP/s" if values["gflop_per_s"] else ""
            cells.append(f"{precision} {values['kind']} {values['ms']:.3f} ms{rate}")
        rows.append((f"(8) forward of {name}, threads=1", "; ".join(cells)))
    results["layer forwards (threads=1)"] = measured
    return rows


def _onednn_exec_lines(run: Callable[[], None]) -> list[str]:
    """The ``primitive,exec`` lines oneDNN's verbose mode prints to file descriptor 1 while ``run``
    runs (captured there: oneDNN writes them from C, past Python's ``sys.stdout``)."""
    with tempfile.TemporaryFile(mode="w+") as captured:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(captured.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                run()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        captured.seek(0)
        return [line for line in captured.read().splitlines() if ",primitive,exec," in line]


def step_primitives(steps: int, warmup: int, precision: str) -> dict[str, Any]:
    """The oneDNN primitives ``steps`` bare steps execute at one thread after ``warmup``: for each
    primitive, propagation kind and shape (``"convolution backward_weights mb64_ic32oc32_..."``)
    its implementation, calls and ``ms`` a step (oneDNN's own timing of each call), and
    ``step_ms``, the whole step timed around them (the verbose mode's printing included, so the
    rest of the step is an upper bound). Float32 matrix products do not run in oneDNN."""
    module, optimiser, batches = _bare_setup(1, False, precision)
    for _ in range(warmup):
        _bare_step(module, optimiser, batches, precision)
    start = time.perf_counter()
    lines = _onednn_exec_lines(
        lambda: [_bare_step(module, optimiser, batches, precision) for _ in range(steps)]
    )
    step_ms = 1e3 * (time.perf_counter() - start) / steps
    primitives: dict[str, dict[str, Any]] = {}
    for line in lines:
        fields = line.split(",")  # ...,exec,cpu,<primitive>,<implementation>,<prop_kind>,...,<shape>,<ms>
        key = f"{fields[5]} {fields[7]} {fields[-2]}"
        entry = primitives.setdefault(key, {"implementation": fields[6], "calls": 0.0, "ms": 0.0})
        entry["calls"] += 1 / steps
        entry["ms"] += float(fields[-1]) / steps
    return {"step_ms": step_ms, "primitives": primitives}


def primitive_rows(args: argparse.Namespace, results: dict[str, Any]) -> list[tuple[str, str]]:
    """``--only primitives``: :func:`step_primitives` for every precision (one run each), a row per
    primitive (the largest first) and one for what else the step spends."""
    measured = {
        precision: step_primitives(args.steps, args.warmup, precision) for precision in args.precision
    }
    results["onednn primitives (threads=1)"] = measured
    keys = {key for run in measured.values() for key in run["primitives"]}
    first = measured[args.precision[0]]["primitives"]
    rows = []
    for key in sorted(keys, key=lambda k: -first.get(k, {"ms": 0.0})["ms"]):
        cells = [
            f"{precision} {run['primitives'][key]['ms']:.3f} ms ({run['primitives'][key]['implementation']})"
            if key in run["primitives"]
            else f"{precision} –"
            for precision, run in measured.items()
        ]
        rows.append((f"(9) {key}", "; ".join(cells)))
    cells = []
    for precision, run in measured.items():
        onednn = sum(entry["ms"] for entry in run["primitives"].values())
        cells.append(f"{precision} {onednn:.2f} of {run['step_ms']:.2f} ms")
    rows.append(("(9) oneDNN's share of a step, threads=1", "; ".join(cells)))
    return rows


def bare_loop(
    steps: int, warmup: int, threads: int, compile_net: bool = False, precision: str = "fp32"
) -> dict[str, float]:
    """Images/s of a plain loop over the same batches and model, the share of data fetching and
    the milliseconds of each part of a step (:data:`PARTS`: ``decode`` includes the
    reparameterisation, ``loss`` is the likelihood and the divergence, ``adam`` its step)."""
    module, optimiser, batches = _bare_setup(threads, compile_net, precision)
    parts = dict.fromkeys(PARTS, 0.0)
    for step in range(warmup + steps):
        if step == warmup:
            start, parts = time.perf_counter(), dict.fromkeys(PARTS, 0.0)
        ticks = _bare_step(module, optimiser, batches, precision)
        for part, begin, end in zip(PARTS, ticks[:-1], ticks[1:], strict=True):
            parts[part] += end - begin
    elapsed = time.perf_counter() - start
    return {
        "images_per_s": steps * BATCH / elapsed,
        "data_share": parts["data"] / elapsed,
        **{f"{part}_ms": 1e3 * seconds / steps for part, seconds in parts.items()},
    }


def _op_counts(profiler: Any, steps: int) -> dict[str, float]:
    return {e.key: e.count / steps for e in profiler.key_averages() if e.key.startswith("aten::")}


def step_ops(steps: int, warmup: int, workdir: Path, precision: str) -> dict[str, dict[str, float]]:
    """The ATen calls a step of (1) train.py's path and of (2) the bare loop make, per step
    (``torch.profiler`` counts over ``steps`` steps after ``warmup``, one thread): what the path
    does beyond the floor, op by op. Counts, not times, so a CPU without bfloat16 units (where
    bf16 runs emulated and slowly) counts a bf16 step's calls as one with them does."""
    recorder = StepProfiler(warmup)
    # train() refuses bf16 without the units (it would run slowly); a count of calls may
    with mock.patch("vae_gjs.tasks.train.check_precision"):
        _train_path(steps, warmup, 1, workdir, False, precision, recorder)
    path = _op_counts(recorder.profiler, steps)
    module, optimiser, batches = _bare_setup(1, False, precision)
    for _ in range(warmup):
        _bare_step(module, optimiser, batches, precision)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            _bare_step(module, optimiser, batches, precision)
    return {"path": path, "bare": _op_counts(profiler, steps)}


def op_rows(args: argparse.Namespace, results: dict[str, Any], workdir: Path) -> list[tuple[str, str]]:
    """``--only ops``: for each precision, the calls the path makes beyond the bare loop a step
    (an op the path calls less often shows negative), and whether they are the same in every
    precision (then no part of the path's extra work depends on the arithmetic)."""
    extra = {}
    for precision in args.precision:
        counts = step_ops(args.ops_steps, args.warmup, workdir, precision)
        differences = {
            name: round(counts["path"].get(name, 0.0) - counts["bare"].get(name, 0.0), 2)
            for name in sorted(set(counts["path"]) | set(counts["bare"]))
        }
        extra[precision] = {name: n for name, n in differences.items() if n}
        results[f"ops path - bare ({precision})"] = extra[precision]
        results[f"ops per step ({precision})"] = {way: sum(c.values()) for way, c in counts.items()}
    rows = []
    for precision, ops in extra.items():
        calls = ", ".join(f"{name.removeprefix('aten::')} {n:+g}" for name, n in ops.items())
        rows.append(
            (f"(6) ATen calls a step, path − bare, {precision}", f"{sum(ops.values()):+.1f}: {calls}")
        )
    if len(extra) > 1:
        same = all(ops == next(iter(extra.values())) for ops in extra.values())
        results["ops path - bare: same in every precision"] = same
        rows.append(("(6) the path's extra calls are the same in every precision", str(same)))
    return rows


#: FLOPs of one Burgess decode of a 32×32 image (fc 0.2 M + transposed convs 1.45 M multiply-adds).
DECODE_FLOP = 3.3e6


def evaluation(threads: int, batches: int) -> dict[str, float]:
    """Reconstruction (z = μ) and K=128 log p(x) throughput on MNIST test images; log p(x) with
    the evaluation's decoder (``inference_net``, ``MAX_DECODE`` = 512 codes a call) in float32 and
    in bfloat16 (``eval.precision=bf16``: encoder and decoder under autocast, as ``evaluate_run``
    computes it) and, for comparison, with ``net.decode`` in calls of 1024 codes (the evaluation
    before the rewrite), all from the same samples."""
    from functools import partial

    from vae_gjs.evaluation.evidence import MAX_DECODE, model_evidence
    from vae_gjs.evaluation.reconstruction import reconstruction_metrics
    from vae_gjs.models import inference_net
    from vae_gjs.models.precision import network_outputs
    from vae_gjs.module import build_module

    torch.set_num_threads(threads)
    module = build_module(compose_train([f"data_dir={DATA_DIR}"]).module, (1, 32, 32)).eval()
    dm = _mnist()
    tick = time.perf_counter()
    reconstruction_metrics(module, dm.loader("test", 500))
    result = {"reconstruction_images_per_s": 10_000 / (time.perf_counter() - tick)}
    means = {}
    fast = inference_net(module.net)
    for name, precision, decode, chunk in (
        ("", "fp32", fast.decode, MAX_DECODE),
        ("bf16_", "bf16", fast.decode, MAX_DECODE),
        ("net_decode_", "fp32", module.net.decode, 1024),
    ):
        tick = time.perf_counter()
        evidence = model_evidence(
            partial(network_outputs, precision, "cpu", module.net.encode),
            partial(network_outputs, precision, "cpu", decode),
            {"trained": module.likelihood.log_prob},
            dm.loader("test", 100),
            128,
            batches,
            max_decode=chunk,
        )["trained"]
        images_per_s = batches * 100 / (time.perf_counter() - tick)
        means[name] = evidence.image_mean_log_px
        result[f"{name}log_px_images_per_s"] = images_per_s
        result[f"{name}log_px_10k_s"] = 10_000 / images_per_s
        result[f"{name}log_px_decode_gflop_per_s"] = images_per_s * 128 * DECODE_FLOP / 1e9
    result["log_px_difference"] = means[""] - means["net_decode_"]
    result["bf16_log_px_difference"] = means["bf16_"] - means[""]
    return result


def _timed(command: list[str]) -> float:
    env = {**os.environ, "VAE_GJS_DATA_DIR": str(DATA_DIR), "WANDB_MODE": "offline"}
    tick = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - tick


def startup(run_dir: Path) -> dict[str, float]:
    train = [sys.executable, "train.py", "logger=csv", "trainer.max_steps=1", "test=false"]
    return {
        "help_s": _timed([sys.executable, "train.py", "--help"]),
        "one_step_s": _timed([*train, f"hydra.run.dir={run_dir / 'startup'}"]),
    }


def peak_memory(steps: int, threads: int) -> float:
    """Peak RSS (MiB) of a child process running the real path."""
    options = [
        "--only",
        "real",
        "--steps",
        str(steps),
        "--repeats",
        "1",
        "--threads",
        str(threads),
        "--no-save",
    ]
    command = [sys.executable, __file__, *options]
    env = {**os.environ, "VAE_GJS_DATA_DIR": str(DATA_DIR), "WANDB_MODE": "offline"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _median(repeats: int, measure: Callable[[], Any]) -> Any:
    values = [measure() for _ in range(repeats)]
    if isinstance(values[0], dict):
        return {key: statistics.median(v[key] for v in values) for key in values[0]}
    return statistics.median(values)


def cpu_model() -> str:
    """The CPU's model name (Linux), for the record of where the numbers came from."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def training_rows(
    args: argparse.Namespace,
    results: dict[str, Any],
    threads: int,
    compiled: bool,
    workdir: Path,
    flop: float,
    gemm: dict[str, float],
) -> list[tuple[str, str]]:
    """The training cases (``real``, ``bare``) for every precision at ``threads``, measured in
    alternating rounds (each round runs every case once: a machine whose speed drifts shifts all
    cases alike), medians into ``results``; the ratios real/bare and bf16/fp32 are the medians of
    the rounds' ratios. Speeds also in GFLOP/s (``flop`` an image) and, where measured, as a share
    of the ``gemm`` rate of their precision."""
    ways = [way for way in ("real", "bare") if way in args.only]
    cases = [(way, precision) for precision in args.precision for way in ways]
    rounds: list[dict[tuple[str, str], float]] = []
    shares: list[float] = []
    for _ in range(args.repeats):
        measured = {}
        for way, precision in cases:
            if way == "real":
                measured[way, precision] = real_path(
                    args.steps, args.warmup, threads, workdir, compiled, precision
                )
            else:
                bare = bare_loop(args.steps, args.warmup, threads, compiled, precision)
                measured[way, precision] = bare["images_per_s"]
                shares.append(bare["data_share"])
                for part in PARTS:
                    measured[f"{part}_ms", precision] = bare[f"{part}_ms"]
        rounds.append(measured)
    tag = f"threads={threads}" + (", compiled" if compiled else "")
    names = {"real": "(1) train.py path", "bare": "(2) bare PyTorch loop"}
    rows = []
    for way, precision in cases:
        speed = statistics.median(r[way, precision] for r in rounds)
        results[f"{way} ({tag}, {precision})"] = speed
        rate = speed * flop / 1e9
        share = f", {rate / gemm[precision]:.0%} of the GEMM's" if precision in gemm else ""
        speeds = f"{speed:,.0f} images/s ({rate:.0f} GFLOP/s{share})"
        rows.append((f"{names[way]}, {tag}, {precision}", speeds))

    def ratio(key: str, a: tuple[str, str], b: tuple[str, str], label: str) -> None:
        if a in rounds[0] and b in rounds[0]:
            value = statistics.median(r[a] / r[b] for r in rounds)
            spread = [round(r[a] / r[b], 3) for r in rounds]
            results[f"{key} ({tag})"] = {"median": value, "rounds": spread}
            rows.append((f"    {label}, {tag}", f"{value:.3f} (rounds {spread})"))

    for precision in args.precision:
        ratio(
            f"ratio real/bare {precision}", ("real", precision), ("bare", precision), f"(1)/(2) {precision}"
        )
    for way in ways:
        ratio(f"ratio bf16/fp32 {way}", (way, "bf16"), (way, "fp32"), f"{way} bf16/fp32")
    if shares:
        rows.append(("    data fetch share of a bare step", f"{statistics.median(shares):.1%}"))
        for part in PARTS:
            ms = {p: statistics.median(r[f"{part}_ms", p] for r in rounds) for p in args.precision}
            results[f"bare step part {part} ms ({tag})"] = ms
            rows.append(
                (f"    bare step: {part}, ms, {tag}", ", ".join(f"{p} {v:.2f}" for p, v in ms.items()))
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="*",
        choices=CASES,
        default=["real", "bare", "eval", "startup", "memory", "gemm"],
        help="the cases to measure (ops, layers and primitives only when named)",
    )
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=300, help="measured training steps per repeat")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidence-batches", type=int, default=5, help="test batches of 100 for log p(x)")
    parser.add_argument("--compile", action="store_true", help="also measure net.compile() (torch.compile)")
    parser.add_argument("--ops-steps", type=int, default=20, help="profiled steps of --only ops")
    parser.add_argument(
        "--precision", nargs="*", default=["fp32", "bf16"], help="precisions of the training cases"
    )
    parser.add_argument("--name", default=time.strftime("%Y-%m-%d_%H-%M-%S"))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "load_average_at_start": os.getloadavg(),
        },
        "settings": vars(args),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        variants = [False, True] if args.compile else [False]
        flop = 0.0
        if {"real", "bare"} & set(args.only):
            flop = results["step_flop_per_image"] = step_flop()
            rows.append(("(1), (2) FLOPs a training step costs an image", f"{flop / 1e6:.2f} MFLOP"))
        for threads in args.threads:
            gemm = {}
            if "gemm" in args.only:
                gemm = {precision: gemm_rate(threads, precision) for precision in args.precision}
                results[f"gemm GFLOP/s (threads={threads})"] = gemm
                rates = ", ".join(f"{precision} {rate:.0f}" for precision, rate in gemm.items())
                rows.append((f"(7) GEMM {GEMM_N}³, threads={threads}", f"{rates} GFLOP/s"))
            for compiled in variants:
                rows += training_rows(args, results, threads, compiled, tmp_path, flop, gemm)
            if "eval" in args.only:
                ev = _median(args.repeats, lambda t=threads: evaluation(t, args.evidence_batches))
                results[f"eval (threads={threads})"] = ev
                rows.append(
                    (
                        f"(3) reconstruction z=μ, threads={threads}",
                        f"{ev['reconstruction_images_per_s']:,.0f} images/s",
                    )
                )
                for tag in ("", "bf16_", "net_decode_"):
                    speed = (
                        f"{ev[tag + 'log_px_images_per_s']:,.1f} images/s → {ev[tag + 'log_px_10k_s']:.0f} s "
                        f"for 10,000 ({ev[tag + 'log_px_decode_gflop_per_s']:.0f} GFLOP/s in the decoder)"
                    )
                    decoder = {
                        "": "inference_net ",
                        "bf16_": "inference_net bf16 ",
                        "net_decode_": "net.decode ",
                    }[tag]
                    rows.append((f"(3) log p(x) K=128, {decoder}threads={threads}", speed))
                difference = f"{ev['log_px_difference']:.2e}"
                rows.append(("(3) log p(x): inference_net − net.decode", difference))
                rows.append(
                    ("(3) log p(x): bf16 − fp32 (same samples)", f"{ev['bf16_log_px_difference']:.2e}")
                )
        if "ops" in args.only:
            rows += op_rows(args, results, tmp_path)
        if "layers" in args.only:
            rows += layer_rows(args, results)
        if "primitives" in args.only:
            rows += primitive_rows(args, results)
        if "startup" in args.only:
            results["startup"] = _median(args.repeats, lambda: startup(tmp_path))
            rows.append(("(4) train.py --help", f"{results['startup']['help_s']:.2f} s"))
            rows.append(
                ("(4) train.py ... trainer.max_steps=1, to exit", f"{results['startup']['one_step_s']:.1f} s")
            )
        if "memory" in args.only:
            results["peak_rss_mib"] = peak_memory(args.steps, args.threads[0])
            rows.append(
                (f"(5) peak RSS of (1), threads={args.threads[0]}", f"{results['peak_rss_mib']:,.0f} MiB")
            )
    results["machine"]["load_average_at_end"] = os.getloadavg()

    width = max(len(name) for name, _ in rows)
    counted = " (ops: one count)" if "ops" in args.only else ""
    print(f"\n{'case':<{width}}  median of {args.repeats}{counted}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"load average: start {results['machine']['load_average_at_start']}, end {os.getloadavg()}")
    if not args.no_save:
        out = ROOT / "benchmarks" / "results" / f"{args.name}.json"
        write_json(out, results)
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
