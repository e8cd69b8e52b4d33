"""A killed group resumes from its members' last.ckpt and ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests.fused.conftest import member_config
from vae_gjs.checkpoints import read_checkpoint
from vae_gjs.fused.engine import FusedEngine
from vae_gjs.fused.group import FusedGroup
from vae_gjs.rundir import RunDir
from vae_gjs.tasks.train import train

MEMBERS = (("divergence=kl_qp",), ("divergence=mmd_reference",))  # MMD: the prior samples resume too
EPOCHS = ("trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.max_steps=-1")


def _configs(folder: Path) -> list:
    return [member_config(folder / f"m{i}", [*o, *EPOCHS]) for i, o in enumerate(MEMBERS)]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return [{k: v for k, v in row.items() if k != "time/epoch_s"} for row in csv.DictReader(handle)]


def test_kill_and_resume_is_bit_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    FusedGroup(_configs(tmp_path / "whole")).run()

    epochs = []
    train_epoch = FusedEngine.train_epoch

    def killed_in_second_epoch(self: FusedEngine, *args, **kwargs):
        epochs.append(self.progress.epoch)
        if len(epochs) == 2:
            raise KeyboardInterrupt  # a kill after epoch 0's checkpoints were written
        return train_epoch(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(FusedEngine, "train_epoch", killed_in_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            FusedGroup(_configs(tmp_path / "cut")).run()
    resumed = FusedGroup(_configs(tmp_path / "cut"))
    assert resumed.start_epoch == 1
    resumed.run()

    for member in range(len(MEMBERS)):
        whole = read_checkpoint(tmp_path / "whole" / f"m{member}" / "checkpoints" / "last.ckpt")
        cut = read_checkpoint(tmp_path / "cut" / f"m{member}" / "checkpoints" / "last.ckpt")
        assert (cut["epoch"], cut["global_step"]) == (whole["epoch"], whole["global_step"]) == (1, 6)
        assert all(torch.equal(whole["state_dict"][k], v) for k, v in cut["state_dict"].items())
        for index, state in whole["optimizer_states"][0]["state"].items():
            assert all(torch.equal(state[k], cut["optimizer_states"][0]["state"][index][k]) for k in state)
        assert torch.equal(
            whole["callbacks"]["RandomState"]["torch"], cut["callbacks"]["RandomState"]["torch"]
        )
        rows = _rows(tmp_path / "whole" / f"m{member}" / "metrics.csv")
        assert rows == _rows(tmp_path / "cut" / f"m{member}" / "metrics.csv") and len(rows) == 3


def test_a_separate_run_resumes_a_fused_members_checkpoint(tmp_path: Path) -> None:
    """The member checkpoint has Lightning's layout (loop counters included), so the default
    launcher can take over a fused sweep: it resumes the member at its next epoch."""
    one_epoch = (
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.max_steps=-1",
        "test=false",
    )
    FusedGroup([member_config(tmp_path / f"m{i}", [*o, *one_epoch]) for i, o in enumerate(MEMBERS)]).run()
    train(member_config(tmp_path / "separate", [*MEMBERS[0], *one_epoch]))
    fused = read_checkpoint(tmp_path / "m0" / "checkpoints" / "last.ckpt")
    separate = read_checkpoint(tmp_path / "separate" / "checkpoints" / "last.ckpt")
    assert fused.keys() == separate.keys() and fused["callbacks"].keys() == separate["callbacks"].keys()
    assert fused["loops"] == separate["loops"]
    assert fused["optimizer_states"][0]["param_groups"] == separate["optimizer_states"][0]["param_groups"]

    RunDir.at(tmp_path / "m0").set_status("running")  # as a kill leaves it
    train(member_config(tmp_path / "m0", [*MEMBERS[0], *EPOCHS, "test=false"]))
    results = RunDir.at(tmp_path / "m0").results
    assert (results["epochs"], results["steps"]) == (2, 6)
    assert [row["epoch"] for row in _rows(tmp_path / "m0" / "metrics.csv")] == ["0", "1"]
