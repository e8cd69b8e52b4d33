"""One random stream per member, each the stream its separate run would draw from.

A separate run draws every random number of training (the reparameterisation noise, and the
prior samples of ``mmd``/``mmd_reference``) from the process's default generator of its device,
seeded by ``seed_everything(seed)`` and advanced by building the network (measured: nothing else
draws from it before the first step). Members that differ in their divergence draw different
amounts per step, so their streams part after the first step. :class:`MemberStreams` keeps one
generator state per member, starting from the state a separate run has after building its
network, and swaps it into the default generator while that member draws: the member's code
calls exactly what the separate run calls (``torch.randn_like``, the divergence's own
``forward``), so it gets the same numbers, bit for bit, on the CPU and on CUDA.

Members whose streams are at the same point draw the same numbers for the same calls: members
that draw only their noise (every divergence but MMD) stay together from their common start, so
:meth:`MemberStreams.together` draws once for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import Tensor


def get_state(device: torch.device) -> Tensor:
    """The default generator's state on ``device`` (CPU: Mersenne Twister; CUDA: Philox seed+offset)."""
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    return torch.get_rng_state()


def set_state(device: torch.device, state: Tensor) -> None:
    """Put ``state`` into the default generator of ``device``."""
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


class MemberStreams:
    """Per-member generator states on ``device``, all starting at ``start`` (or given ``states``)."""

    def __init__(self, device: torch.device, states: list[Tensor]) -> None:
        self.device = device
        self.states = [state.clone() for state in states]

    @classmethod
    def from_current(cls, device: torch.device, members: int) -> MemberStreams:
        """Every member starts from the default generator's current state."""
        start = get_state(device)
        return cls(device, [start] * members)

    def member(self, index: int) -> contextlib.AbstractContextManager[None]:
        """Member ``index``'s stream is the default generator inside the block; its advanced
        state is kept for the next block, and the previous default state is put back."""
        return self.together([index])

    def alike(self, indices: Sequence[int]) -> list[list[int]]:
        """``indices`` in classes of members whose streams are at the same point (equal states),
        in order of first appearance."""
        classes: list[list[int]] = []
        for index in indices:
            for members in classes:
                if torch.equal(self.states[members[0]], self.states[index]):
                    members.append(index)
                    break
            else:
                classes.append([index])
        return classes

    @contextmanager
    def together(self, indices: Sequence[int]) -> Iterator[None]:
        """The common stream of ``indices`` (one class of :meth:`alike`) is the default generator
        inside the block; every one of them keeps its advanced state, as if each had drawn."""
        outside = get_state(self.device)
        set_state(self.device, self.states[indices[0]])
        try:
            yield
        finally:
            advanced = get_state(self.device)
            for index in indices:
                self.states[index] = advanced
            set_state(self.device, outside)
