"""Reading checkpoints written by train.py, with one-line errors for everything that can be wrong
with one: unreadable, not a Lightning checkpoint, or weights of another architecture."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from vae_gjs.errors import RunError

ALLOWED_FILE = "allowed: a checkpoint written by train.py (<run_dir>/checkpoints/*.ckpt)"
ALLOWED_MODEL = "allowed: a checkpoint of a run with the same model, dataset and divergence config"


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint at ``path`` (``weights_only``: tensors and plain values, no code runs)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0][:120]
        raise RunError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {reason}); {ALLOWED_FILE}"
        ) from error
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise RunError(
            f"{path} is not a checkpoint written by train.py (no Lightning state_dict); {ALLOWED_FILE}"
        )
    return checkpoint


def chosen_on(checkpoint: dict[str, Any]) -> str | None:
    """The loss whose lowest epoch ``best.ckpt`` keeps (``val/loss``, or ``train/loss`` without a
    validation split), as the checkpoint's ModelCheckpoint record names it; ``None`` if it has none."""
    for key, record in checkpoint.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(record, dict) and record.get("monitor"):
            return str(record["monitor"])
    return None


def model_weights(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The weights of a state dict, without torchmetrics' accumulators (``metrics.*``)."""
    return {key: value for key, value in state_dict.items() if not key.startswith("metrics.")}


def _listed(items: list[str]) -> str:
    return ", ".join(items[:3]) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")


def check_fits(
    checkpoint: dict[str, Any], module: nn.Module, path: str | os.PathLike[str], target: str
) -> None:
    """Raise a one-line :class:`RunError` naming the weights of ``checkpoint`` that ``module``
    (built from ``target``, e.g. "the model of this config") lacks, does not expect, or shapes
    differently."""
    saved = {k: list(v.shape) for k, v in model_weights(checkpoint["state_dict"]).items()}
    expected = {k: list(v.shape) for k, v in model_weights(module.state_dict()).items()}
    problems = []
    if missing := sorted(expected.keys() - saved.keys()):
        problems.append(f"missing weights {_listed(missing)}")
    if unexpected := sorted(saved.keys() - expected.keys()):
        problems.append(f"unexpected weights {_listed(unexpected)}")
    shapes = [
        f"{k} {saved[k]} vs {expected[k]}"
        for k in sorted(saved.keys() & expected.keys())
        if saved[k] != expected[k]
    ]
    if shapes:
        problems.append(f"shapes (checkpoint vs config) {_listed(shapes)}")
    if problems:
        raise RunError(f"checkpoint {path} does not fit {target}: {'; '.join(problems)}; {ALLOWED_MODEL}")
