"""The arithmetic a network runs in: ``fp32``, or ``bf16`` (bfloat16 autocast for the network's
layers only).

Under ``bf16``, ``torch.autocast`` runs the encoder's and decoder's matrix products and
convolutions (``linear``, ``conv2d``, ``conv_transpose2d``: its lower-precision op list) in
bfloat16 on float32 weights, and the element-wise layers between them (ReLU, the log-variance
bound) follow their bfloat16 inputs. Everything else stays float32: :func:`network_outputs`
turns the network's outputs (μ, log σ², logits) into float32 before anything uses them, so the
reparameterisation, the likelihood, the divergences' closed forms, the losses and their
reductions run in float32, and the weights, their gradients and Adam's state are float32
tensors (autocast casts a copy of each weight for its layer; the gradient reaches the float32
weight through that cast). Tested in tests/models/test_precision.py; speed and fidelity in
docs/performance.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from vae_gjs.config.names import PRECISIONS
from vae_gjs.errors import ConfigError
from vae_gjs.hardware import BF16_FLAGS, cpu_bf16_units

Outputs = TypeVar("Outputs", Tensor, tuple[Tensor, ...])


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[object]:
    """The autocast context of ``precision`` on ``device`` (a no-op context for ``fp32``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; allowed: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def network_outputs(
    precision: str, device: torch.device | str, layers: Callable[..., Outputs], *inputs: Tensor
) -> Outputs:
    """``layers(*inputs)`` computed in ``precision`` on ``device``, its outputs (a tensor or a
    tuple of tensors) as float32: the one way a network is called in training, test and
    evaluation. Under ``fp32`` this is ``layers(*inputs)`` itself (``.float()`` of a float32
    tensor is the tensor)."""
    with autocast(precision, device):
        outputs = layers(*inputs)
    if isinstance(outputs, tuple):
        return tuple(output.float() for output in outputs)  # type: ignore[return-value]
    return outputs.float()


def check_precision(precision: str, device: torch.device) -> None:
    """A :class:`ConfigError` where ``precision`` has no native units on ``device`` (bfloat16
    without them is emulated: slower than float32, not faster)."""
    if precision != "bf16":
        return
    if device.type == "cpu" and not cpu_bf16_units():
        raise ConfigError(
            f"precision=bf16 but this CPU has no native bfloat16 units (none of {', '.join(BF16_FLAGS)} "
            "in /proc/cpuinfo), where bf16 runs slower than fp32; allowed here: precision=fp32"
        )
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(
            f"precision=bf16 but {torch.cuda.get_device_name(device)} has no native bfloat16 units; "
            "allowed here: precision=fp32"
        )
