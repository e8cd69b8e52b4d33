"""Nothing couples members: one member's loss never changes another's weights, and a member whose
loss goes non-finite stops alone (failed, its weights at that step saved, never updated again)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.fused.conftest import member_config
from vae_gjs.checkpoints import read_checkpoint
from vae_gjs.errors import NonFiniteLossError
from vae_gjs.fused.group import FusedGroup

STEPS = ("trainer.max_steps=6", "test=false")
NAN_AT = ("divergence=kl_qp", "divergence._target_=tests.fused.helpers.NaNAt")


def _group(tmp_path: Path, second: tuple[str, ...]) -> FusedGroup:
    return FusedGroup(
        [
            member_config(tmp_path / "first", ["divergence=gjs", "alpha=0.3", *STEPS]),
            member_config(tmp_path / "second", [*second, *STEPS]),
        ]
    )


def _weights(group: FusedGroup, member: int) -> dict[str, torch.Tensor]:
    return group.engine.member_weights(member)


def test_one_adam_over_the_members_is_independent_adams(tmp_path: Path, batched: bool) -> None:
    """Changing member 1's loss (λ = 1 vs λ = 50) leaves member 0's weights bit-identical."""
    plain = _group(tmp_path / "a", ("divergence=kl_qp",))
    heavy = _group(tmp_path / "b", ("divergence=kl_qp", "lam=50"))
    assert plain.engine.optimizer.defaults["weight_decay"] == 0
    for group in (plain, heavy):
        group.fit()
    first_plain, first_heavy = _weights(plain, 0), _weights(heavy, 0)
    assert all(torch.equal(first_plain[k], first_heavy[k]) for k in first_plain)
    assert not all(torch.equal(_weights(plain, 1)[k], _weights(heavy, 1)[k]) for k in first_plain)


def test_a_non_finite_member_stops_alone(tmp_path: Path, batched: bool) -> None:
    failing = _group(tmp_path / "fail", (*NAN_AT, "+divergence.at=2"))
    outcomes = failing.run()
    assert outcomes[0] is None and isinstance(outcomes[1], NonFiniteLossError)
    assert "non-finite loss at step 2 (epoch 0) in the divergence term" in str(outcomes[1])

    second = failing.runs[1].run
    status = json.loads((second.path / "status.json").read_text())
    assert status["status"] == "failed" and "nonfinite-step2.ckpt" in status["error"]
    assert not second.last_ckpt.exists() and not second.results_file.exists()
    saved = read_checkpoint(second.checkpoints / "nonfinite-step2.ckpt")
    assert saved["global_step"] == 2
    # Its weights are those after 2 steps (a healthy twin stopped at step 2 has the same)...
    twin = FusedGroup(
        [
            member_config(
                tmp_path / "twin0", ["divergence=gjs", "alpha=0.3", "trainer.max_steps=2", "test=false"]
            ),
            member_config(
                tmp_path / "twin1", [*NAN_AT, "+divergence.at=-1", "trainer.max_steps=2", "test=false"]
            ),
        ]
    )
    twin.fit()
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in _weights(twin, 1).items())
    # ... and were never updated again, while member 0 trained to the end untouched by it.
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in _weights(failing, 1).items())
    first = failing.runs[0].run
    assert json.loads((first.path / "status.json").read_text())["status"] == "completed"
    assert json.loads(first.results_file.read_text())["steps"] == 6
    healthy = _group(tmp_path / "healthy", (*NAN_AT, "+divergence.at=-1"))
    healthy.fit()
    assert all(torch.equal(_weights(healthy, 0)[k], v) for k, v in _weights(failing, 0).items())
