"""Fused sweeps benchmark: model-images per second of a fused group against one separate run.

    python benchmarks/fused.py                   # CPU: the 9-α gjs group vs one run, 1 and 2 threads
    python benchmarks/fused.py --device cuda     # GPU: the 22-member Table 1 group vs one run, same card
    python benchmarks/fused.py --operators       # operators a step: Table 1 group (both ways) vs one run
    python benchmarks/fused.py --layers batched members   # both ways of running the members' layers
    python benchmarks/fused.py --device cuda --layers default graphed   # + the layers as CUDA graphs
    python benchmarks/fused.py --evaluation      # log p(x)'s decode: member by member vs batched

Both sides run the real code on real MNIST batches (batch 64): the fused side is
:class:`vae_gjs.fused.engine.FusedEngine` (stacked weights, per-member random streams, one Adam);
its layers run the device's default way (member by member on a CPU, batched with ``vmap`` on a
GPU) or, with ``--layers``, each way given, measured in the same alternating rounds;
the separate side is the bare PyTorch loop of one model (``benchmarks/run.py``'s floor: Lightning's
path reaches 0.95-0.97 of it, so the ratio printed is a lower bound). "Model-images/s" counts
every member's images: fused steps/s × members × 64. ``--device cuda`` also projects the
training wall time of a 100-epoch MNIST Table 1 column (22 runs, 938 steps an epoch) fused, and
separately one run after the other. Both modes also count the operators one step dispatches
(forward, backward and Adam: each a kernel launch on a GPU, where a step of these small models
is bound by launches, not FLOPs): the count does not depend on the machine. ``--evaluation``
times, instead of training steps, the decode that dominates a group's evaluation (log p(x),
chunks of 512 codes): member by member with the evaluation's inference net, as a group
evaluates, against all members in one vmapped call (the members of a Table 1 group: 11 on a
CPU, 22 on a GPU). Prints one JSON
summary (finishes in about a minute on an H100; a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import lightning as L  # noqa: E402
import torch  # noqa: E402
from tests.conftest import DATA_DIR, compose_train  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from vae_gjs.data import MNIST, InMemoryBatches  # noqa: E402
from vae_gjs.evaluation.evidence import MAX_DECODE  # noqa: E402
from vae_gjs.fused.engine import FusedEngine  # noqa: E402
from vae_gjs.fused.rng import MemberStreams, get_state  # noqa: E402
from vae_gjs.fused.stack import StackedNets  # noqa: E402
from vae_gjs.models import Burgess, inference_net  # noqa: E402
from vae_gjs.module import VAE, build_module  # noqa: E402

BATCH = 64
IMAGE = (1, 32, 32)  # MNIST at the Burgess net's size
STEPS_PER_EPOCH = 938  # MNIST: 60,000 images in batches of 64
ALPHAS = [f"alpha={a / 10:g}" for a in range(1, 10)]
#: The members of a Table 1 column (conf/experiment/table1.yaml).
TABLE1 = [
    *[("divergence=gjs", a) for a in ALPHAS],
    *[("divergence=dgjs", a) for a in ALPHAS],
    ("divergence=kl_qp",),
    ("divergence=kl_pq",),
    ("divergence=beta_vae",),
    ("divergence=mmd_reference",),
]
GJS_GROUP = [("divergence=gjs", a) for a in ALPHAS]


#: ``--precision``: the arithmetic of every model's layers (conf/train.yaml's ``precision``).
PRECISION = {"value": "fp32"}


def build_members(members: list[tuple[str, ...]], device: torch.device) -> tuple[list[VAE], MemberStreams]:
    """The members' modules, each built as its separate run builds it, and their streams."""
    modules, starts = [], []
    for overrides in members:
        cfg = compose_train([f"data_dir={DATA_DIR}", f"precision={PRECISION['value']}", *overrides])
        L.seed_everything(cfg.seed, workers=True, verbose=False)
        modules.append(build_module(cfg.module, IMAGE))
        starts.append(get_state(device))
    return modules, MemberStreams(device, starts)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batches(device: torch.device) -> Any:
    dm = MNIST(root=str(DATA_DIR), download=False, batch_size=BATCH)
    dm.setup()
    while True:
        for x, _ in InMemoryBatches(dm.splits["train"], BATCH, shuffle=True, seed=0):
            yield x.to(device, non_blocking=True)


#: ``--layers``: the engine's ``batched`` argument (None: the device's default); ``graphed`` is
#: batched with the layers captured as CUDA graphs (:func:`graph_layers`).
LAYERS = {"default": None, "batched": True, "members": False, "graphed": True}


class _Layers(nn.Module):
    """One method of the stacked nets as a module's ``forward`` (what CUDA graphs capture)."""

    def __init__(self, nets: StackedNets, method: str) -> None:
        super().__init__()
        self.nets = nets
        self.call = getattr(nets, method)  # bound before graph_layers shadows it

    def forward(self, inputs: torch.Tensor) -> Any:
        return self.call(inputs)


def graph_layers(nets: StackedNets, batch: int) -> None:
    """A prototype for a GPU, in this benchmark only, measured against the engine's own way:
    the stacked nets' ``encode`` and ``decode``, forward and backward, captured as CUDA graphs
    (``torch.cuda.make_graphed_callables``: one launch each instead of ≈ 350 operators of a Table 1
    group's step, 868 in all, counted on a CPU) for batches of ``batch`` images; other batch sizes
    run as before. No random numbers are drawn inside the layers, so the members' streams are
    untouched; Adam updates the weights in place, where the graphs read them."""
    device = nets.params[0].device
    x = torch.rand(batch, *IMAGE, device=device)
    with torch.no_grad():
        latent = nets.encode(x)[0].shape[-1]
    z = torch.randn(nets.size, batch, latent, device=device, requires_grad=True)
    encode, decode = torch.cuda.make_graphed_callables(
        (_Layers(nets, "encode"), _Layers(nets, "decode")), ((x,), (z,)), allow_unused_input=True
    )
    eager_encode, eager_decode = nets.encode, nets.decode
    nets.encode = lambda x: encode(x) if x.shape[0] == batch else eager_encode(x)  # type: ignore[method-assign]
    nets.decode = lambda z: decode(z) if z.shape[1] == batch else eager_decode(z)  # type: ignore[method-assign]


class Fused:
    """Steps of the fused engine over ``members``, its layers run the ``way`` of :data:`LAYERS`."""

    def __init__(self, members: list[tuple[str, ...]], device: torch.device, way: str = "default") -> None:
        modules, streams = build_members(members, device)
        self.engine = FusedEngine(modules, streams, device, LAYERS[way])
        if way == "graphed":
            graph_layers(self.engine.nets, BATCH)
        self.batches = _batches(device)

    def __call__(self) -> None:
        self.engine.step(next(self.batches))


class Separate:
    """Steps of one model in a bare loop (a separate run's floor), with its one sync a step."""

    def __init__(self, device: torch.device) -> None:
        (module,), _ = build_members([("divergence=gjs", "alpha=0.5")], device)
        module.to(device).on_fit_start()  # the layers and the optimiser a fit on this device uses
        self.module, self.divergence, self.likelihood = module, module.divergence, module.likelihood
        self.optimiser = module.configure_optimizers()
        self.batches = _batches(device)

    def __call__(self) -> None:
        x = next(self.batches)
        mu, logvar = self.module.encode(x)  # the net's layers in the run's precision, outputs float32
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.module.decode_logits(z)
        loss = self.likelihood.loss(logits, x).mean() + self.divergence(mu, logvar).mean()
        if not torch.isfinite(loss):
            raise RuntimeError("non-finite loss")
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()


class OperatorCount(TorchDispatchMode):
    """Counts the ATen operators dispatched inside the block (by name)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def operators_per_step(step: Any) -> int:
    """Operators one call of ``step`` dispatches (after a warm-up, which it needs: Adam's state)."""
    with OperatorCount() as counter:
        step()
    return sum(counter.counts.values())


def steps_per_s(step: Any, steps: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def compare(
    members: list[tuple[str, ...]],
    device: torch.device,
    steps: int,
    warmup: int,
    rounds: int,
    layers: list[str],
) -> dict[str, Any]:
    """Separate and fused (each way of ``layers``) measured in alternating rounds (a shared
    machine's load then hits all alike); the medians of the rounds, and the median of the
    per-round ratios with the ratios themselves."""
    separate = Separate(device)
    steps_per_s(separate, warmup, device)
    fused, failed = {}, {}
    for way in layers:
        try:
            fused[way] = Fused(members, device, way)
            steps_per_s(fused[way], warmup, device)
        except Exception as error:  # a prototype way that fails (graphed) must not cost the others
            fused.pop(way, None)
            failed[f"fused_{way}_error"] = f"{type(error).__name__}: {error}"
    n = len(members)
    fused_steps = max(steps // n, 5) if device.type == "cpu" else steps
    single_rates: list[float] = []
    fused_rates: dict[str, list[float]] = {way: [] for way in fused}
    for _ in range(rounds):
        single_rates.append(steps_per_s(separate, steps, device))
        for way, step in fused.items():
            fused_rates[way].append(steps_per_s(step, fused_steps, device))
    single = statistics.median(single_rates)
    result: dict[str, Any] = {
        "members": n,
        "rounds": rounds,
        "separate_operators_per_step": operators_per_step(separate),
        "separate_steps_per_s": round(single, 2),
        "separate_model_images_per_s": round(single * BATCH),
        **failed,
    }
    for way, step in fused.items():
        together = statistics.median(fused_rates[way])
        prefix = "fused" if way == "default" else f"fused_{way}"
        ratios = [f * n / s for f, s in zip(fused_rates[way], single_rates, strict=True)]
        result.update(
            {
                f"{prefix}_batched": step.engine.nets.batched,
                f"{prefix}_operators_per_step": operators_per_step(step),
                f"{prefix}_steps_per_s": round(together, 2),
                f"{prefix}_model_images_per_s": round(together * n * BATCH),
                f"{prefix}_ratio": round(statistics.median(ratios), 3),
                # the rounds' own ratios: their median can differ from the medians' ratio
                f"{prefix}_ratio_rounds": [round(ratio, 3) for ratio in ratios],
            }
        )
    return result


def evaluation_decode(members: int, device: torch.device, rounds: int, calls: int = 4) -> dict[str, Any]:
    """Milliseconds a member-decode of ``MAX_DECODE`` codes (log p(x)'s chunk), medians of
    alternating rounds: member by member with the evaluation's inference net (channels-last
    weights on a CPU, as ``evaluate_run`` makes them), and all members in one vmapped call."""
    torch.manual_seed(0)
    nets = [Burgess(1, 32).to(device).eval() for _ in range(members)]
    if device.type == "cpu":
        nets = [net.to(memory_format=torch.channels_last) for net in nets]  # type: ignore[call-overload]
    fast = [inference_net(net) for net in nets]
    stacked = StackedNets(nets, device, batched=True).to(device).requires_grad_(False)
    z = torch.randn(members, MAX_DECODE, nets[0].latent_dim, device=device)
    ways = {
        "members": lambda: [net.decode(codes) for net, codes in zip(fast, z, strict=True)],
        "batched": lambda: stacked.decode(z),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    with torch.inference_mode():
        difference = (torch.stack(ways["members"]()) - ways["batched"]()).abs().max()
        for _ in range(rounds):
            for way, decode in ways.items():
                _sync(device)
                start = time.perf_counter()
                for _ in range(calls):
                    decode()
                _sync(device)
                times[way].append((time.perf_counter() - start) / calls / members * 1e3)
    result: dict[str, Any] = {"members": members, "codes_per_decode": MAX_DECODE, "rounds": rounds}
    for way, values in times.items():
        result[f"{way}_ms_per_member_decode"] = round(statistics.median(values), 3)
    result["batched_over_members_time"] = round(
        statistics.median(b / m for b, m in zip(times["batched"], times["members"], strict=True)), 3
    )
    result["max_abs_difference"] = float(difference)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2], help="CPU threads to measure")
    parser.add_argument(
        "--steps", type=int, default=None, help="separate steps a round (default: 45 CPU, 200 GPU)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--layers",
        nargs="+",
        choices=sorted(LAYERS),
        default=["default"],
        help="how the fused members' layers run: the device's default, batched (vmap), members (one by one)",
    )
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="the models' precision")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of the projected GPU column")
    parser.add_argument(
        "--operators", action="store_true", help="only count the operators of a step (no timing)"
    )
    parser.add_argument(
        "--evaluation", action="store_true", help="time log p(x)'s decode (member by member vs batched)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    PRECISION["value"] = args.precision
    if "graphed" in args.layers and device.type != "cuda":
        parser.error(f"--layers graphed needs --device cuda (CUDA graphs); got --device {args.device}")
    summary: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "precision": args.precision,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    if args.evaluation:  # a Table 1 group's members: both groups of the column at once on a GPU
        members = len(TABLE1) if device.type == "cuda" else len(TABLE1) // 2
        for threads in args.threads if device.type == "cpu" else [None]:
            if threads is not None:
                torch.set_num_threads(threads)
            key = "evaluation_decode" + ("" if threads is None else f"_threads_{threads}")
            summary[key] = evaluation_decode(members, device, args.rounds)
    elif args.operators:  # both ways of running the layers, whatever the device
        separate = Separate(device)
        steps_per_s(separate, 2, device)
        summary["operators_per_step"] = {"separate": operators_per_step(separate)}
        for way in ("batched", "members"):
            fused = Fused(TABLE1, device, way)
            steps_per_s(fused, 2, device)
            summary["operators_per_step"][f"fused_table1_group_{len(TABLE1)}_members_{way}"] = (
                operators_per_step(fused)
            )
    elif device.type == "cuda":
        steps = args.steps or 200
        result = compare(TABLE1, device, steps, args.warmup, args.rounds, args.layers)
        column_steps = args.epochs * STEPS_PER_EPOCH
        for key in [key for key in result if key.endswith("steps_per_s") and key.startswith("fused")]:
            result[f"projected_column_training_minutes_{key.removesuffix('_steps_per_s')}"] = round(
                column_steps / result[key] / 60, 1
            )
        result["projected_column_training_minutes_separate_one_after_another"] = round(
            len(TABLE1) * column_steps / result["separate_steps_per_s"] / 60, 1
        )
        summary["table1_group"] = result
    else:
        steps = args.steps or 45
        for threads in args.threads:
            torch.set_num_threads(threads)
            summary[f"gjs_9_alpha_group_threads_{threads}"] = compare(
                GJS_GROUP, device, steps, args.warmup, args.rounds, args.layers
            )
    summary["load_average_at_end"] = os.getloadavg()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
