"""N copies of one architecture as stacked weights: ``torch.func.stack_module_state``.

The members' weights live in stacked leaf tensors ``[N, *shape]`` (one per weight of the
architecture), which one optimiser steps. ``encode``/``decode`` run
``torch.func.functional_call`` of the architecture in one of two ways:

* **batched** (a GPU's way): under ``torch.func.vmap``, whose batching rules turn N
  convolutions into one grouped convolution and N matrix products into one batched product —
  one kernel launch a layer for all members, where a small model's step is bound by launches;
* **member by member** (a CPU's way): on each member's slice of the weights in turn, so every
  kernel is the single model's kernel on a member-sized tensor that stays in a core's cache
  (stacked activations do not, and vmap reorders them between layers), in the form a separate
  run trains on that device (:func:`vae_gjs.models.inference.training_form`: on a CPU the thin last
  transposed convolution in its sub-pixel form, forward + backward 3.5 instead of 5.8 ms a
  model-step on the 2-core machine).
  Measured in docs/fused.md.

Nothing couples members: member ``m``'s outputs depend only on slice ``m`` of every weight, so
the gradient of ``Σ_m loss_m`` with respect to slice ``m`` is exactly the gradient of ``loss_m``
(the other terms contribute exact zeros).

Works for any architecture with ``encode(x) -> (mu, logvar)`` and ``decode(z) -> logits``
(``docs/design.md``), on any device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from vae_gjs.models.inference import training_form


class _Method(nn.Module):
    """``forward(inputs)`` = ``net.<method>(inputs)``; ``net``'s weights are named ``net.<name>``."""

    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, inputs: Tensor) -> Any:
        return getattr(self.net, self.method)(inputs)


def _functional(net: nn.Module, method: str) -> Callable[[dict[str, Tensor], Tensor], Any]:
    """``(weights, inputs) -> net.<method>(inputs)`` with ``weights`` in place of ``net``'s own."""
    wrapper = _Method(net, method)

    def call(weights: dict[str, Tensor], inputs: Tensor) -> Any:
        return functional_call(wrapper, weights, (inputs,))

    return call


def _vmapped(net: nn.Module, method: str, batched_inputs: bool) -> Callable[..., Any]:
    """``(weights [N, ...], inputs) -> net.<method>`` of every member, vmapped over the weights
    (and over the inputs if ``batched_inputs``; otherwise all members see the same inputs)."""
    return vmap(_functional(net, method), in_dims=(0, 0 if batched_inputs else None))


class StackedNets(nn.Module):
    """``len(nets)`` networks of one architecture as stacked parameters.

    ``params[i]`` is ``[N, *shape]`` for the ``i``-th of ``nets[0].named_parameters()`` (the
    order of a single run's ``VAE.parameters()``, hence of its Adam state). ``device``: where it
    will train (member by member, the layers take that device's training form; moving it there is
    the caller's). ``batched``: all members in one call a layer (``vmap``), else member by member
    (module docstring). ``precision``: the members' (their layers' training form depends on it).
    """

    def __init__(
        self, nets: Sequence[nn.Module], device: torch.device, batched: bool = True, precision: str = "fp32"
    ) -> None:
        super().__init__()
        if not nets:
            raise ValueError("StackedNets needs at least one network")
        params, buffers = stack_module_state(list(nets))
        self.size = len(nets)
        self.names = list(params)
        self.params = nn.ParameterList([nn.Parameter(params[name].detach().clone()) for name in self.names])
        self.buffer_names = list(buffers)
        for index, name in enumerate(self.buffer_names):
            self.register_buffer(f"stacked_{index}", buffers[name].clone())
        self.batched = batched
        # A weightless copy of the architecture, called functionally (it never holds real tensors).
        template = copy.deepcopy(nets[0])
        if batched:
            template = template.to("meta")
            self._encode = _vmapped(template, "encode", batched_inputs=False)
            self._decode = _vmapped(template, "decode", batched_inputs=True)
        else:
            template = training_form(template, device, precision).to("meta")
            self._encode_one = _functional(template, "encode")
            self._decode_one = _functional(template, "decode")

    def weights(self) -> dict[str, Tensor]:
        """Stacked parameters and buffers keyed as a single network's ``state_dict``."""
        named = dict(zip(self.names, self.params, strict=True))
        named.update({name: getattr(self, f"stacked_{i}") for i, name in enumerate(self.buffer_names)})
        return named

    def _prefixed(self) -> dict[str, Tensor]:
        return {f"net.{name}": tensor for name, tensor in self.weights().items()}

    def _members(self) -> list[dict[str, Tensor]]:
        """Each member's weights: slice ``m`` of every stacked tensor (one ``unbind`` per tensor,
        so the backward gathers the members' gradients into the stacked one in one copy)."""
        slices = {name: tensor.unbind(0) for name, tensor in self._prefixed().items()}
        return [{name: views[m] for name, views in slices.items()} for m in range(self.size)]

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every member's ``(mu, logvar)``, each ``[N, B, d]``, for one shared batch ``x [B, ...]``."""
        if self.batched:
            return self._encode(self._prefixed(), x)
        codes = [self._encode_one(weights, x) for weights in self._members()]
        return torch.stack([mu for mu, _ in codes]), torch.stack([logvar for _, logvar in codes])

    def decode(self, z: Tensor) -> Tensor:
        """Every member's logits ``[N, B, C, H, W]`` for its own codes ``z [N, B, d]``."""
        if self.batched:
            return self._decode(self._prefixed(), z)
        members = zip(self._members(), z.unbind(0), strict=True)
        return torch.stack([self._decode_one(weights, codes) for weights, codes in members])

    def member_state(self, member: int) -> dict[str, Tensor]:
        """Member ``member``'s weights as a single network's ``state_dict`` (copies)."""
        return {name: tensor[member].detach().clone() for name, tensor in self.weights().items()}

    @torch.no_grad()
    def load_member(self, member: int, state: dict[str, Tensor]) -> None:
        """Copy a single network's ``state_dict`` into slice ``member``."""
        for name, tensor in self.weights().items():
            tensor[member].copy_(state[name])
