"""The checkpoint format a fused member shares with a separate run: what Lightning writes for a
separate run (weights, Adam state, the callbacks' records, the loop counters), written by the
group for each member (:func:`checkpoint_record`) and read back when the group resumes
(:func:`read_member`), so that ``evaluate.py``, :mod:`vae_gjs.checkpoints` and a separate run
take a member's checkpoint as their own, and a group takes a separate run's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from vae_gjs.callbacks import EpochBookkeeping, RandomState
from vae_gjs.rundir import RunDir


def _counters(ready: int, completed: int | None = None, started: bool = True) -> dict[str, int]:
    """One of Lightning's progress counters (``ready``, ``completed``, ``started``)."""
    done = ready if completed is None else completed
    return {"ready": ready, "completed": done, **({"started": ready} if started else {})}


def _batch_counters(total: int, current: int, last: bool | None = False) -> dict[str, Any]:
    """A loop's batch counters: ``total`` over the run, ``current`` in the epoch."""
    record: dict[str, Any] = {
        "total": {**_counters(total), "processed": total},
        "current": {**_counters(current), "processed": current},
    }
    if last is not None:
        record["is_last_batch"] = last
    return record


def lightning_loops(epoch: int, global_step: int, epoch_steps: int, last_batch: bool) -> dict[str, Any]:
    """The loop counters Lightning saves at the end of training epoch ``epoch`` after
    ``global_step`` steps (``epoch_steps`` of them in this epoch; ``last_batch``: the epoch ran
    to its end), so a separate run resumes a fused member's checkpoint at the next epoch.
    (Lightning 2.x layout; a checkpoint without it would restart at epoch 0.)"""
    steps = {"total": _counters(global_step, started=False), "current": _counters(epoch_steps, started=False)}
    zero_grad = {"total": _counters(global_step), "current": _counters(epoch_steps)}
    epochs = {**_counters(epoch + 1, completed=epoch), "processed": epoch + 1}
    idle = {"total": _counters(0, started=False), "current": _counters(0, started=False)}
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": global_step},
            "epoch_loop.batch_progress": _batch_counters(global_step, epoch_steps, last_batch),
            "epoch_loop.scheduler_progress": idle,
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {
                "optimizer": {"step": steps, "zero_grad": zero_grad}
            },
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": idle,
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": _batch_counters(0, 0),
            "epoch_progress": {"total": epochs, "current": dict(epochs)},
        },
        "validate_loop": {"state_dict": {}, "batch_progress": _batch_counters(0, 0)},
        "test_loop": {"state_dict": {}, "batch_progress": _batch_counters(0, 0)},
        "predict_loop": {"state_dict": {}, "batch_progress": _batch_counters(0, 0, last=None)},
    }


def checkpoint_record(
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    random_state: dict[str, Any],
    epoch: int,
    global_step: int,
    hparams: dict[str, Any],
    best: tuple[str, dict[str, Any]],
    loops: dict[str, Any],
    bookkeeping: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A checkpoint in the layout Lightning writes for a separate run (what ``evaluate.py`` and
    ``vae_gjs.checkpoints`` read): weights, Adam state, the RandomState callback's generators,
    the best-score record of the ModelCheckpoint callback, at an epoch's end the EpochBookkeeping
    callback's row, the loop counters, epoch and step."""
    callbacks = {RandomState().state_key: random_state, best[0]: best[1]}
    if bookkeeping is not None:
        callbacks[EpochBookkeeping().state_key] = bookkeeping
    return {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": weights,
        "loops": loops,
        "callbacks": callbacks,
        "optimizer_states": [optimizer],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }


def best_record(
    checkpoint: ModelCheckpoint, run: RunDir, best_score: float | None
) -> tuple[str, dict[str, Any]]:
    """The state the separate run's ``ModelCheckpoint`` (``checkpoint``) saves in ``run`` with the
    best monitored score ``best_score`` so far: its key and record."""
    score = None if best_score is None else torch.tensor(best_score)
    path = str(run.best_ckpt) if best_score is not None else ""
    return checkpoint.state_key, {
        "monitor": checkpoint.monitor,
        "best_model_score": score,
        "best_model_path": path,
        "current_score": score,
        "dirpath": str(run.checkpoints),
        "best_k_models": {path: score} if path else {},
        "kth_best_model_path": path,
        "kth_value": score,
        "last_model_path": str(run.last_ckpt),
    }


@dataclass(frozen=True)
class MemberState:
    """What a member resumes from a checkpoint (its own or its separate run's): the weights and
    optimiser state, its generator's state, the best score so far and the row of the epoch the
    checkpoint ends (``EpochBookkeeping.row_state``), at ``epoch`` and ``global_step``."""

    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    stream: torch.Tensor
    best_score: float | None
    row: dict[str, Any] | None
    epoch: int
    global_step: int


def read_member(record: dict[str, Any], checkpoint: ModelCheckpoint, device: torch.device) -> MemberState:
    """A checkpoint ``record`` as a member resumes it on ``device``; ``checkpoint``: the run's
    ``ModelCheckpoint``, whose record holds the best score."""
    randomness = record["callbacks"][RandomState().state_key]
    stream = randomness["cuda"][device.index or 0] if device.type == "cuda" else randomness["torch"]
    score = record["callbacks"].get(checkpoint.state_key, {}).get("best_model_score")
    return MemberState(
        weights=record["state_dict"],
        optimizer=record["optimizer_states"][0],
        stream=stream,
        best_score=None if score is None else float(score),
        row=record["callbacks"].get(EpochBookkeeping().state_key, {}).get("row"),
        epoch=record["epoch"],
        global_step=record["global_step"],
    )
