"""learn_alpha=true end to end: the update direction, the clamp, alpha_lr=0 as the fixed-α run,
resume, results.json, metrics.csv, evaluation (and load_run) with the learned α, the error for
skew-less divergences (docs/learned_alpha.md)."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

import vae_gjs
from tests.conftest import DATA_DIR, TINY, compose_train, run_script
from tests.wandb_offline import run_history
from vae_gjs.checkpoints import read_checkpoint
from vae_gjs.divergences import DGJS, GJS
from vae_gjs.models import Burgess
from vae_gjs.module import VAE
from vae_gjs.rundir import read_metrics

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded_torch")]


def _alpha(module: VAE) -> float:
    alpha = module.divergence.alpha
    return alpha.item() if isinstance(alpha, torch.Tensor) else alpha


class Recorder(Callback):
    """α (after each optimiser step and its clamp), α's gradient and the loss, step by step;
    and α as the run starts (after a resume has restored the checkpoint)."""

    def __init__(self) -> None:
        self.alphas: list[float] = []
        self.grads: list[float] = []
        self.losses: list[float] = []
        self.start: float | None = None

    def on_train_start(self, trainer: Any, module: VAE) -> None:
        self.start = _alpha(module)

    def on_after_backward(self, trainer: Any, module: VAE) -> None:
        alpha = module.divergence.alpha
        if isinstance(alpha, torch.nn.Parameter):
            self.grads.append(alpha.grad.item())

    def on_train_batch_end(self, trainer: Any, module: VAE, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append(outputs["loss"].item())
        self.alphas.append(_alpha(module))


def _train(run_dir: Path, *overrides: str) -> Recorder:
    from vae_gjs.tasks.train import train

    recorder = Recorder()
    train(
        compose_train([*TINY, f"data_dir={DATA_DIR}", "threads=1", *overrides], run_dir=run_dir), [recorder]
    )
    return recorder


def _fixed_encoder_vae(cls: type[GJS], alpha: float, lr: float, lam: float) -> tuple[VAE, torch.Tensor]:
    torch.manual_seed(0)
    net = Burgess(in_channels=1, image_size=32).requires_grad_(False)
    vae = VAE(
        net,
        cls(alpha=alpha, learn_alpha=True),
        lam=lam,
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        param_groups={"divergence": {"lr": lr}},
    )
    return vae, torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("cls", [GJS, DGJS])
@pytest.mark.parametrize("start", [0.1, 0.9])
def test_alpha_descends_the_divergence_on_a_fixed_encoder(cls: type[GJS], start: float) -> None:
    """α's gradient in the VAE's loss is λ·∂D̄/∂α (finite differences of the closed form on the
    encoder's outputs: the reconstruction does not depend on α), the first Adam step moves α by lr
    against it, and repeated steps settle at the minimiser of D̄ over a fine grid of α."""
    lam, lr = 2.5, 0.01
    vae, x = _fixed_encoder_vae(cls, start, lr, lam)
    with torch.no_grad():
        mu, logvar = (t.double() for t in vae.net.encode(x))

    def mean_divergence(alpha: float) -> float:
        return cls(alpha=alpha)(mu, logvar).mean().item()

    optimizer = vae.configure_optimizers()
    assert [g["name"] for g in optimizer.param_groups] == ["divergence"]  # the encoder is fixed
    loss = vae._step((x, None), "train")
    loss.backward()
    derivative = (mean_divergence(start + 1e-5) - mean_divergence(start - 1e-5)) / 2e-5
    assert vae.divergence.alpha.grad.item() == pytest.approx(lam * derivative, rel=1e-3)
    optimizer.step()
    vae.divergence.project_()
    assert vae.divergence.alpha.item() == pytest.approx(start - lr * np.sign(derivative), rel=1e-4)
    encoded = (mu.float(), logvar.float())
    for _ in range(150):  # more steps on the same encoder outputs, by the same rule (λ·D̄ alone)
        optimizer.zero_grad()
        (lam * vae.divergence(*encoded).mean()).backward()
        optimizer.step()
        vae.divergence.project_()
    grid = np.linspace(0, 1, 201)
    best = grid[np.argmin([mean_divergence(a) for a in grid])]
    assert 0.05 < best < 0.95  # an inside minimum: the test is about descent, not the clamp
    assert vae.divergence.alpha.item() == pytest.approx(best, abs=0.02)


@pytest.mark.parametrize("divergence", ["gjs", "dgjs"])
def test_clamp_holds_at_zero_and_one_with_finite_gradients(tmp_path: Path, divergence: str) -> None:
    """From 0.999 an Adam step of alpha_lr = 3 overshoots whichever way it goes: after every step α
    is in [0, 1], the first step lands exactly on an end, and gradients there are finite."""
    recorder = _train(
        tmp_path,
        f"divergence={divergence}",
        "learn_alpha=true",
        "alpha=0.999",
        "optim.alpha_lr=3",
        "trainer.max_steps=6",
        "test=false",
    )
    assert len(recorder.alphas) == 6 and all(0.0 <= a <= 1.0 for a in recorder.alphas)
    end = 1.0 if recorder.grads[0] < 0 else 0.0  # Adam's first step is -lr·sign(gradient)
    assert recorder.alphas[0] == end
    assert np.isfinite(recorder.grads).all() and np.isfinite(recorder.losses).all()
    alpha = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]["divergence.alpha"]
    assert alpha.item() == recorder.alphas[-1]


def test_alpha_lr_zero_is_exactly_the_fixed_alpha_run(tmp_path: Path) -> None:
    common = ("divergence=gjs", "alpha=0.3", "trainer.max_steps=5")
    fixed = _train(tmp_path / "fixed", *common)
    learned = _train(tmp_path / "learned", *common, "learn_alpha=true", "optim.alpha_lr=0")
    assert learned.losses == fixed.losses and len(fixed.losses) == 5
    assert learned.alphas == [float(torch.tensor(0.3))] * 5
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("fixed", "learned")]
    assert results[1]["test/loss"] == results[0]["test/loss"]
    assert results[1]["alpha_learned"] == float(torch.tensor(0.3)) and "alpha_learned" not in results[0]


def test_resume_restores_alpha_exactly_and_alpha_is_logged_every_epoch(tmp_path: Path) -> None:
    common = (
        "divergence=dgjs",
        "learn_alpha=true",
        "optim.alpha_lr=0.05",
        "trainer.max_steps=-1",
        "trainer.limit_train_batches=3",
        "test=false",
    )
    whole = _train(tmp_path / "whole", *common, "trainer.max_epochs=2")
    _train(tmp_path / "cut", *common, "trainer.max_epochs=1")
    saved = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.ckpt")["state_dict"]["divergence.alpha"]
    (tmp_path / "cut" / "status.json").unlink()  # as if the run had been killed after epoch 0
    resumed = _train(tmp_path / "cut", *common, "trainer.max_epochs=2")
    assert resumed.start == saved.item() == whole.alphas[2] != 0.5
    assert resumed.alphas == whole.alphas[3:] and resumed.losses == whole.losses[3:]
    rows = read_metrics(tmp_path / "whole" / "metrics.csv")
    assert [r["train/alpha"] for r in rows] == [whole.alphas[2], whole.alphas[5]]
    results = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert results["alpha_learned"] == whole.alphas[5]


def test_alpha_goes_to_wandb_every_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    overrides = ("divergence=gjs", "learn_alpha=true", "optim.alpha_lr=0.05", "trainer.max_steps=-1")
    recorder = _train(
        tmp_path, *overrides, "trainer.max_epochs=2", "trainer.limit_train_batches=2", "logger=wandb"
    )
    history = run_history(next((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")))
    logged = [row["train/alpha"] for row in history if "train/alpha" in row]
    assert logged == [recorder.alphas[1], recorder.alphas[3]]  # α after each epoch's last step
    assert [r["train/alpha"] for r in read_metrics(tmp_path / "metrics.csv") if "train/alpha" in r][
        :2
    ] == logged


def test_evaluation_uses_the_learned_alpha_of_the_checkpoint(tmp_path: Path) -> None:
    from vae_gjs.config import validate_evaluate
    from vae_gjs.data import MNIST
    from vae_gjs.tasks.evaluate import evaluate

    _train(tmp_path, "divergence=gjs", "learn_alpha=true", "alpha=0.5", "optim.alpha_lr=0.05", "test=false")
    state = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["state_dict"]
    learned = state.pop("divergence.alpha").item()
    assert abs(learned - 0.5) > 0.1
    options = ["k=2", "n_batches=1", "batch_size=32", "rec_batches=1", "splits=[test]", "figures=false"]
    cfg = compose_train(
        [f"run_dir={tmp_path}", f"data_dir={DATA_DIR}", "threads=1", *options], config="evaluate"
    )
    validate_evaluate(cfg)  # evaluate.py's path, in this process
    evaluate(cfg)
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["learned"] == {"alpha": learned}
    assert vae_gjs.load_run(tmp_path).divergence.alpha.item() == learned  # the user's way in
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    assert VAE.load_from_checkpoint(checkpoint).divergence.alpha.item() == learned

    datamodule = MNIST(root=str(DATA_DIR), download=False)
    datamodule.setup()
    x = datamodule.splits["test"].images.batch(torch.arange(32))

    def test_div(alpha: float) -> float:  # a fixed-α VAE with the checkpoint's weights
        vae = VAE(Burgess(in_channels=1, image_size=32), GJS(alpha=alpha))
        vae.load_state_dict({k: v for k, v in state.items() if not k.startswith("metrics.")})
        with torch.no_grad():
            return vae.eval().per_image_terms(x, sample=False).div.mean().item()

    assert record["metrics"]["test/div"] == pytest.approx(test_div(learned), rel=1e-5)
    assert record["metrics"]["test/div"] != pytest.approx(test_div(0.5), rel=1e-3)


def test_learn_alpha_with_a_divergence_without_skew_is_one_line(tmp_path: Path) -> None:
    result = run_script(
        "train.py", "learn_alpha=true", "divergence=kl_qp", f"hydra.run.dir={tmp_path}", timeout=120
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert lines == [
        "Error: learn_alpha=true with divergence=kl_qp, which has no skew α to learn; "
        "allowed: learn_alpha=true with divergence=gjs or divergence=dgjs, or learn_alpha=false"
    ]
    assert not (tmp_path / "config.yaml").exists()
