"""A fused member is its separate run: same initial weights, batches, noise, prior samples and
Adam, so the same losses step by step: bit for bit member by member (a CPU's way), to float32
rounding batched (a GPU's way)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from tests.fused.conftest import THREE, member_config
from vae_gjs.fused.engine import FusedEngine
from vae_gjs.fused.group import FusedGroup
from vae_gjs.tasks.train import train

STEPS = 24
#: Relative tolerance on each step's loss when the members' layers run batched (a GPU's way): the
#: grouped kernels add in another order than a single model's, and the differences grow through
#: the Adam steps to 1.8e-5 at 30 steps (measured); 1e-4 is 5x that and 100x below the loss's own
#: change per step (~1%), so a wrong batch, noise or weight fails. Member by member (a CPU's way)
#: every kernel is the separate run's own, Adam's included (it steps each member's own slices), and
#: the losses must be equal to the last bit.
RTOL = 1e-4


class LossRecorder(Callback):
    """Each step's loss, and the generator's state after the last step."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.generator = torch.empty(0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))
        self.generator = torch.get_rng_state()


@pytest.fixture(scope="module")
def separate_runs(tmp_path_factory: pytest.TempPathFactory) -> list[LossRecorder]:
    recorders = []
    for index, overrides in enumerate(THREE):
        recorder = LossRecorder()
        run_dir = tmp_path_factory.mktemp(f"separate{index}")
        train(
            member_config(run_dir, [*overrides, f"trainer.max_steps={STEPS}", "test=false"]),
            callbacks=[recorder],
        )
        recorders.append(recorder)
    return recorders


def test_fused_losses_match_separate_runs_step_by_step(
    separate_runs: list[LossRecorder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    separate_losses = np.array([run.losses for run in separate_runs])
    recorded: list[list[float]] = []
    step = FusedEngine.step

    def recording_step(self: FusedEngine, x: torch.Tensor):
        result = step(self, x)
        recorded.append(result[0].tolist())
        return result

    monkeypatch.setattr(FusedEngine, "step", recording_step)
    cfgs = [
        member_config(tmp_path / f"m{i}", [*o, f"trainer.max_steps={STEPS}", "test=false"])
        for i, o in enumerate(THREE)
    ]
    group = FusedGroup(cfgs)
    assert group.engine.nets.batched is batched
    outcomes = group.run()
    assert outcomes == [None, None, None]  # test=false: no test error, and no failure
    # Every member drew exactly its separate run's numbers: kl_qp and gjs drew their noise
    # together (one draw), mmd_reference its noise and prior samples in its own stream.
    for member, run in enumerate(separate_runs):
        assert torch.equal(group.engine.streams.states[member], run.generator)
    assert torch.equal(group.engine.streams.states[0], group.engine.streams.states[1])
    assert not torch.equal(group.engine.streams.states[0], group.engine.streams.states[2])
    fused = np.array(recorded).T
    assert fused.shape == separate_losses.shape == (3, STEPS)
    np.testing.assert_array_equal(fused[:, 0], separate_losses[:, 0])
    if batched:
        np.testing.assert_allclose(fused, separate_losses, rtol=RTOL)
    else:
        np.testing.assert_array_equal(fused, separate_losses)
    # The members really differ (else the test could not tell their noise or divergence apart).
    assert len({round(v, 3) for v in fused[:, -1]}) == 3


def test_members_start_from_their_separate_runs_weights_and_generator(tmp_path: Path) -> None:
    cfgs = [member_config(tmp_path / f"m{i}", o) for i, o in enumerate(THREE)]
    group = FusedGroup(cfgs)
    import lightning as L
    from hydra.utils import instantiate

    from vae_gjs.module import build_module

    L.seed_everything(cfgs[1].seed, workers=True, verbose=False)
    separate = build_module(cfgs[1].module, instantiate(cfgs[1].dataset).image_shape)
    # On a CPU, by default: member by member, and Adam's single-pass kernel.
    assert group.engine.nets.batched is False and group.engine.optimizer.param_groups[0]["fused"] is True
    fused = group.engine.member_weights(1)
    assert fused.keys() == separate.state_dict().keys()
    assert all(torch.equal(fused[k], v) for k, v in separate.state_dict().items())
    assert torch.equal(group.engine.streams.states[1], torch.get_rng_state())
