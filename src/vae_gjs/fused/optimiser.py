"""The members' optimiser: one optimiser over every member's own slices of the stacked weights,
stepping each member exactly as its separate run's optimiser steps it.

The optimiser is the members' own ``conf/module`` partial (Adam by default), in the one parameter
group a separate run has (``net``, with its options), with the single-pass kernel a separate run
has (:func:`~vae_gjs.module.single_pass_options`). It steps each member's slices of the stacked
weights (views sharing their storage), not the stacked tensors: every slice is a tensor of its
separate run's shape, so a kernel that rounds a tensor's vector blocks and its remainder
differently (Adam's) updates a member's elements exactly as the separate run's, and a failed
member is left out by giving its slices no gradient.

One optimiser over N members' tensors is N independent optimisers only when its step couples no
two parameters: each element's update reads that element's weight, gradient and state alone.
The optimisers allowed (:data:`~vae_gjs.fused.plan.ELEMENTWISE_OPTIMIZERS`) are such; any
other is refused (:func:`check_elementwise`): L-BFGS (one search direction and line search over
all parameters at once), ``SparseAdam`` (sparse gradients), ``Adafactor`` and ``Muon``
(statistics of a whole matrix), and every optimiser from outside ``torch.optim``, whose step
the engine cannot vouch for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vae_gjs.fused.plan import ELEMENTWISE_OPTIMIZERS
from vae_gjs.module import VAE, OptimizerFactory, in_layout_of, single_pass_options


def check_elementwise(factory: OptimizerFactory) -> None:
    """A ``ValueError`` unless the optimiser ``factory`` (a class or a ``functools.partial`` of
    one) is one whose step couples no parameters (:data:`ELEMENTWISE_OPTIMIZERS`)."""
    cls = getattr(factory, "func", factory)
    name = getattr(cls, "__name__", repr(cls))
    if getattr(torch.optim, name, None) is not cls or f"torch.optim.{name}" not in ELEMENTWISE_OPTIMIZERS:
        raise ValueError(
            f"fused members need an optimiser whose step is elementwise, got {name} "
            f"(allowed: {', '.join(ELEMENTWISE_OPTIMIZERS)}; run it separately)"
        )


class MembersOptimiser:
    """The optimiser of ``size`` members whose weights ``stacked`` holds (a leading member
    dimension on every parameter), built as ``module`` (any member) builds its own."""

    def __init__(self, module: VAE, stacked: nn.Module, size: int) -> None:
        check_elementwise(module.optimizer)
        (group,) = module.parameter_groups()
        self.slices = [
            [param.detach()[member].requires_grad_() for param in stacked.parameters()]
            for member in range(size)
        ]
        pieces = [{**group, "params": [piece for slices in self.slices for piece in slices]}]
        self.optimizer = module.optimizer(pieces, **single_pass_options(module.optimizer))

    def step(self, grads: Sequence[Tensor], members: Sequence[int]) -> None:
        """One step of ``members`` with the stacked gradients ``grads`` (one per parameter, the
        member dimension first); the others' weights and state stay as they are."""
        self.optimizer.zero_grad(set_to_none=True)
        per_member = [grad.unbind(0) for grad in grads]
        for member in members:
            for piece, grad in zip(self.slices[member], per_member, strict=True):
                piece.grad = grad[member]
        self.optimizer.step()

    def member_state(self, member: int) -> dict[str, Any]:
        """Member ``member``'s optimiser state as its separate run's ``optimizer.state_dict()``."""
        group = {key: value for key, value in self.optimizer.param_groups[0].items() if key != "params"}
        slices = self.slices[member]
        state = {
            index: {key: value.detach().cpu().clone() for key, value in self.optimizer.state[piece].items()}
            for index, piece in enumerate(slices)
            if self.optimizer.state.get(piece)
        }
        return {"state": state, "param_groups": [{**group, "params": list(range(len(slices)))}]}

    @torch.no_grad()
    def load_member(self, member: int, saved: dict[str, Any]) -> None:
        """Put a separate run's ``optimizer.state_dict()`` ``saved`` into member ``member``."""
        options = self.optimizer.param_groups[0]  # Adam keeps a fused kernel's step on the device
        step_on_device = bool(options.get("fused") or options.get("capturable"))
        for index, piece in enumerate(self.slices[member]):
            state = saved["state"].get(index)
            if state is not None:
                self.optimizer.state[piece] = {
                    key: in_layout_of(
                        value.to(piece.device if key != "step" or step_on_device else "cpu", copy=True), piece
                    )
                    for key, value in state.items()
                }
