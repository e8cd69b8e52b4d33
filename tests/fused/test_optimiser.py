"""The members' optimiser (:mod:`vae_gjs.fused.optimiser`): one optimiser over the members'
slices is N separate optimisers for every optimiser allowed, and one whose step couples
parameters is refused, by the engine and by the plan of groups."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tests.fused.conftest import member_config
from vae_gjs.fused.optimiser import MembersOptimiser, check_elementwise
from vae_gjs.fused.plan import ELEMENTWISE_OPTIMIZERS, unfusable_reason
from vae_gjs.module import single_pass_options


class Stacked(nn.Module):
    """Two parameters with a leading member dimension, as StackedNets holds them."""

    def __init__(self, size: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(size, 5, 3, generator=generator))
        self.bias = nn.Parameter(torch.randn(size, 7, generator=generator))


class Member:
    """What MembersOptimiser reads of a member's VAE: its optimiser and its one parameter group."""

    def __init__(self, factory: object, params: list[nn.Parameter]) -> None:
        self.optimizer = factory
        self.params = params

    def parameter_groups(self) -> list[dict[str, object]]:
        return [{"params": self.params, "name": "net"}]


@pytest.mark.parametrize("name", ELEMENTWISE_OPTIMIZERS)
def test_an_allowed_optimiser_over_the_slices_is_each_members_own(name: str) -> None:
    """Three steps of two members through one optimiser leave each member's weights and state
    bit for bit as its own optimiser leaves them: the step is elementwise."""
    cls = getattr(torch.optim, name.removeprefix("torch.optim."))
    factory = functools.partial(cls, lr=0.01)
    stacked = Stacked(2)
    alone = [[p.detach()[m].clone().requires_grad_() for p in stacked.parameters()] for m in range(2)]
    # each member alone, with the options a separate run gives its optimiser
    own = [factory([{"params": params}], **single_pass_options(factory)) for params in alone]
    fused = MembersOptimiser(Member(factory, []), stacked, 2)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=generator) for p in stacked.parameters()]
        fused.step(grads, [0, 1])
        for member in range(2):
            for param, grad in zip(alone[member], grads, strict=True):
                param.grad = grad[member].clone()
            own[member].step()
    for member in range(2):
        for mine, theirs in zip(fused.slices[member], alone[member], strict=True):
            assert torch.equal(mine, theirs)
        assert fused.member_state(member)["state"].keys() == own[member].state_dict()["state"].keys()


@pytest.mark.parametrize("cls", [torch.optim.LBFGS, torch.optim.SparseAdam, torch.optim.Adafactor])
def test_an_optimiser_whose_step_couples_parameters_is_refused(cls: type, tmp_path: Path) -> None:
    """L-BFGS takes one search direction over all parameters (a member's step would read the
    others' gradients), SparseAdam and Adafactor are not elementwise: neither the engine nor the
    launcher's plan fuses them."""
    with pytest.raises(ValueError, match="elementwise"):
        check_elementwise(functools.partial(cls, lr=0.01))
    target = f"torch.optim.{cls.__name__}"
    cfg = OmegaConf.to_container(member_config(tmp_path, [f"module.optimizer._target_={target}"]))
    assert isinstance(cfg, dict)
    assert unfusable_reason(cfg) == (f"module.optimizer {target} (its step is not elementwise)")


def test_the_default_optimiser_is_fusable(tmp_path: Path) -> None:
    check_elementwise(torch.optim.Adam)
    cfg = OmegaConf.to_container(member_config(tmp_path, []))
    assert isinstance(cfg, dict) and cfg["module"]["optimizer"]["_target_"] == "torch.optim.Adam"
    assert unfusable_reason(cfg) is None
