"""Run the divergence tests single-threaded: the tensors are small, and on a shared two-core machine
torch's intra-op thread pool mostly spins (3x slower under load). The previous setting is restored."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
