"""The plan of a fused sweep: which of its jobs train as one fused model, in which groups, on how
many workers (no torch, no Lightning: the launcher decides before anything heavy is imported).

Two jobs fuse when their resolved configs are equal after removing the **fusable** keys
(listed in :mod:`vae_gjs.config.keys`: ``FUSABLE``, ``FUSABLE_MODULE``, ``FUSED_CALLBACKS``):

* ``divergence``, ``alpha``, ``lam`` — the regulariser: the engine keeps one divergence module
  and one λ per member (:mod:`vae_gjs.fused.engine`);
* what is derived from them or only describes a run: ``run_name``, ``run_dir``, ``group``,
  ``tags``, ``choices.divergence``, ``module.divergence``, ``module.lam`` (the module config
  repeats the regulariser), ``logger`` (each member builds its own loggers), ``callbacks`` when
  they are the default ones (checkpoints, bookkeeping, random state, progress bar: the fused
  group does their work for each member, into its own folder);
* what happens after training, member by member: ``evaluate`` and ``eval``.

Everything else (dataset and its batch size and seed, model, ``seed``, ``optim``, ``likelihood``,
``trainer``, ``threads``, ...) must be equal: it decides the batches, the initial weights and
the shared optimiser. A job that the engine cannot reproduce (validation split, several devices,
another precision, ``compile``, an explicit ``ckpt_path``, unknown trainer keys, other callbacks,
a learned α (``learn_alpha=true``), no training at all (``trainer.limit_train_batches=0``)) is
never fused;
it runs as a separate run. So is a group of one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vae_gjs.config.keys import FUSABLE, FUSABLE_MODULE, FUSED_CALLBACKS, FUSED_TRAINER_KEYS
from vae_gjs.errors import RunError
from vae_gjs.hardware import usable_cores
from vae_gjs.rundir import COMPLETED, RunDir

log = logging.getLogger(__name__)


#: The optimisers a fused group may use (``module.optimizer._target_``): those whose step is
#: elementwise (each element's update reads that element's weight, gradient and state alone), so
#: that one optimiser over the members' slices is each member's own (:mod:`vae_gjs.fused.optimiser`).
ELEMENTWISE_OPTIMIZERS = (
    "torch.optim.Adam",
    "torch.optim.AdamW",
    "torch.optim.Adamax",
    "torch.optim.NAdam",
    "torch.optim.RAdam",
    "torch.optim.Adagrad",
    "torch.optim.Adadelta",
    "torch.optim.RMSprop",
    "torch.optim.Rprop",
    "torch.optim.SGD",
)


def unfusable_reason(cfg: dict[str, Any]) -> str | None:
    """Why the resolved config ``cfg`` must run as a separate run (``None``: it can be fused)."""
    trainer = cfg.get("trainer", {})
    for key, value in trainer.items():
        if key not in FUSED_TRAINER_KEYS:
            return f"trainer.{key} is not supported by the fused engine"
        allowed = FUSED_TRAINER_KEYS[key]
        if allowed is not None and value not in allowed:
            return f"trainer.{key}={value}"
    if trainer.get("limit_train_batches") == 0:  # Lightning skips fit: no checkpoint, no training row
        return "trainer.limit_train_batches=0 (no training)"
    callbacks = cfg.get("callbacks") or {}
    extra = sorted(set(callbacks) - set(FUSED_CALLBACKS))
    if extra:
        return f"callbacks.{extra[0]} is not supported by the fused engine"
    for name in ("checkpoint", "random_state"):
        if callbacks.get(name) is None:
            return f"callbacks.{name} is null (the fused engine always checkpoints)"
    optimizer = cfg.get("module", {}).get("optimizer", {}).get("_target_")
    if optimizer is not None and optimizer not in ELEMENTWISE_OPTIMIZERS:
        return f"module.optimizer {optimizer} (its step is not elementwise)"
    if cfg.get("learn_alpha"):
        return "learn_alpha=true (a trained divergence parameter)"
    if cfg.get("dataset", {}).get("val_size", 0):
        return "dataset.val_size > 0 (validation)"
    if cfg.get("compile"):
        return "compile=true"
    if cfg.get("ckpt_path") is not None:
        return "ckpt_path is set"
    return None


def fusion_key(cfg: dict[str, Any], resume: tuple[int, int] | None) -> str:
    """A string equal for exactly the configs that may share a fused model (``resume``: the
    epoch and step of the job's last.ckpt, so members always start together)."""
    shared = {key: value for key, value in cfg.items() if key not in FUSABLE}
    shared["choices"] = {k: v for k, v in cfg.get("choices", {}).items() if k != "divergence"}
    shared["module"] = {k: v for k, v in cfg.get("module", {}).items() if k not in FUSABLE_MODULE}
    return json.dumps([shared, resume], sort_keys=True, default=str)


def make_groups(keys: Sequence[str | None], max_models: int, workers: int = 1) -> list[list[int]]:
    """Job indices grouped by equal ``keys`` (``None``: never fused), in order of first
    appearance, each group cut into near-equal chunks of at most ``max_models``; while there are
    fewer groups than ``workers`` (``n_jobs``), the largest group is halved, so that 22 jobs on
    2 workers train as two groups of 11 rather than one of 22 beside an idle worker."""
    by_key: dict[str, list[int]] = {}
    singles: list[list[int]] = []
    for index, key in enumerate(keys):
        if key is None:
            singles.append([index])
        else:
            by_key.setdefault(key, []).append(index)
    groups = []
    for members in by_key.values():
        chunks = -(-len(members) // max_models)
        size = -(-len(members) // chunks)
        groups += [members[i : i + size] for i in range(0, len(members), size)]
    while len(groups) + len(singles) < workers and max(map(len, groups), default=0) >= 2:
        largest = max(range(len(groups)), key=lambda g: len(groups[g]))
        members = groups.pop(largest)
        half = -(-len(members) // 2)
        groups[largest:largest] = [members[:half], members[half:]]
    return groups + singles


@dataclass(frozen=True)
class Workers:
    """How the launcher runs a sweep's groups: ``count`` side by side (joblib processes; 1 runs
    them in the sweep's own process), each with ``threads`` torch threads for jobs that leave
    ``threads`` null (``None``: torch's default), and ``note``, one line when a user's
    ``n_jobs`` was capped."""

    count: int
    threads: int | None
    note: str | None = None


def choose_workers(
    n_jobs: int | None, jobs: int, cores: int, devices: int, job_threads: int | None
) -> Workers:
    """The workers of a fused sweep of ``jobs`` jobs on a machine with ``cores`` usable CPU cores
    and ``devices`` CUDA devices for its jobs (0: they train on the CPU).

    ``n_jobs=null`` (the default) chooses for the machine: on a GPU one worker (one group) per
    device, where fusing is the lever; on a CPU one worker per ``job_threads`` cores (one per
    core when the jobs leave ``threads`` null), where a member's convolutions are the same work
    fused or not and what pays is every core busy with one single-threaded stream, as
    ``cpu_pair`` does. ``-1`` is one worker per core. Any count is capped by the cores (more
    workers than cores only wait for each other) and by the jobs (a worker needs a group of at
    least one), with a note when a given ``n_jobs`` was cut. With several workers on a CPU, each
    gets ``cores // count`` threads (1 with a worker per core)."""
    if n_jobs is None:
        wanted = devices if devices else max(1, cores // (job_threads or 1))
    else:
        wanted = cores if n_jobs == -1 else n_jobs
    count = max(1, min(wanted, cores, jobs))
    note = None
    if n_jobs not in (None, -1) and count < wanted:
        limits = [f"the {cores} usable CPU cores"] * (wanted > cores) + [f"the {jobs} jobs"] * (wanted > jobs)
        note = f"hydra.launcher.n_jobs={n_jobs} is more than {' and '.join(limits)}; using n_jobs={count}"
    threads = max(1, cores // count) if count > 1 and not devices else None
    return Workers(count, threads, note)


def resume_point(run_dir: str) -> tuple[int, int] | None:
    """``(epoch, global_step)`` of the run folder's last.ckpt, if it has one."""
    path = RunDir.at(run_dir).last_ckpt
    if not path.is_file():
        return None
    from vae_gjs.checkpoints import read_checkpoint

    record = read_checkpoint(path)
    return int(record["epoch"]), int(record["global_step"])


def plan(configs: Sequence[DictConfig | None], max_models: int, workers: int = 1) -> list[list[int]]:
    """Job indices to run together: fused groups (two or more) and single jobs. ``None`` marks a
    job whose set-up failed (left out). A job whose folder holds a file that cannot be read runs
    as a separate run, which fails with the one line naming the file."""
    keys: list[str | None] = []
    for cfg in configs:
        if cfg is None:
            keys.append("")  # placeholder, removed below
            continue
        container = OmegaConf.to_container(cfg)
        assert isinstance(container, dict)
        reason = unfusable_reason(container)
        resume = None
        try:
            if RunDir.at(cfg.run_dir).status == COMPLETED:
                reason = "completed"
            resume = resume_point(cfg.run_dir)
        except RunError as error:
            reason = f"its folder cannot be read: {error}"
        if reason:
            log.info(f"{cfg.run_dir}: a separate run ({reason})")
        keys.append(None if reason else fusion_key(container, resume))
    groups = make_groups(keys, max_models, workers)
    return [group for group in groups if configs[group[0]] is not None]


def describe_plan(groups: Sequence[Sequence[int]], workers: Workers, devices: int, n_jobs: int | None) -> str:
    """One line: how many groups of which sizes run on how many workers, and why that many."""
    sizes = ", ".join(str(len(group)) for group in groups)
    where = (
        f"{workers.count} worker(s) on {devices} GPU(s)"
        if devices
        else f"{workers.count} worker(s)" + (f" of threads={workers.threads}" if workers.threads else "")
    )
    chosen = (
        f" (n_jobs chosen for {'the GPUs' if devices else f'the {usable_cores()} usable CPU cores'})"
        if n_jobs is None
        else ""
    )
    return f"Fused launcher: {len(groups)} group(s) of {sizes} job(s) on {where}{chosen}"
