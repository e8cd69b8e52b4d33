"""The machine, decided in one place (:mod:`vae_gjs.hardware`): the device an option names and the
threads a task runs, the same for train.py, evaluate.py and a fused group."""

from __future__ import annotations

import pytest
import torch

from vae_gjs.errors import ConfigError
from vae_gjs.hardware import choose_device, usable_cores, use_threads


def test_auto_and_cpu_name_the_cpu_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip(
            "checks the answer of a CPU-only machine; with a GPU, auto picks it and gpu/cuda are valid"
        )
    assert choose_device("trainer.accelerator", "auto") == torch.device("cpu")
    assert choose_device("device", "cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda", "cuda:1"])
def test_a_gpu_on_a_machine_without_one_is_one_line_naming_the_option(name: str) -> None:
    if torch.cuda.is_available():
        pytest.skip(
            "checks the answer of a CPU-only machine; with a GPU, auto picks it and gpu/cuda are valid"
        )
    with pytest.raises(ConfigError) as error:
        choose_device("device", name)
    assert str(error.value) == (
        f"device={name} but this machine has no GPU (torch.cuda.is_available() is False); "
        "use device=cpu or auto"
    )


def test_threads_are_capped_by_the_usable_cores_and_null_leaves_torchs_default() -> None:
    before = torch.get_num_threads()
    try:
        use_threads(None)
        assert torch.get_num_threads() == before
        use_threads(10_000)
        assert torch.get_num_threads() == usable_cores()
        use_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
