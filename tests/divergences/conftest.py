"""Run the divergence tests single-threaded: the tensors are small (see
:func:`tests.conftest.single_threaded_torch`)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _single_threaded(single_threaded_torch: None) -> None:
    """Every module of divergence tests on one torch thread."""
