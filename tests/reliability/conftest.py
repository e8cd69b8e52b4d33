"""Fixtures of the reliability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run in-process work on one thread (in-process runs also pass ``threads=1``): the same
    numbers in and out of process, and no thread contention on a busy shared machine, where two
    spinning threads make a small step a hundred times slower. The session's count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
