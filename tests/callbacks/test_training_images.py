"""Pictures while training (vae_gjs.callbacks.images): PNGs in the run folder, TensorBoard and W&B
images, labelled traversal rows, and training unchanged by it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import train_tiny
from vae_gjs.divergences.gaussian import kl_normal
from vae_gjs.evaluation.images import LABEL_WIDTH, kl_per_dimension, label_rows
from vae_gjs.rundir import read_metrics

pytestmark = pytest.mark.slow

NAMES = ("reconstructions", "samples", "traversals")
EPOCHS = ("trainer.max_steps=-1", "trainer.limit_train_batches=2", "threads=1")


def test_every_n_epochs_writes_pngs_and_tensorboard_images_without_hp_metric(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=3", "images_every_n_epochs=2", "logger=tensorboard"])
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [f"epoch_002_{n}.png" for n in NAMES]
    sizes = {}
    for name in NAMES:
        with Image.open(tmp_path / "figures" / f"epoch_002_{name}.png") as image:
            assert image.format == "PNG"
            sizes[name] = image.size
    side = 10 * 34 + 2  # 10 images of 32 px + 2 px padding per row
    assert sizes == {
        "reconstructions": (side, 4 * 34 + 2),  # 2 rows of test images, each above its reconstructions
        "samples": (side, side),
        "traversals": (LABEL_WIDTH + side, side),  # 10 latent dimensions, a label margin on the left
    }
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    assert sorted(events.Tags()["images"]) == [f"images/{n}" for n in NAMES]
    assert [e.step for e in events.Images("images/samples")] == [4]  # after epoch 2 = 4 steps
    assert "hp_metric" not in events.Tags()["scalars"]
    assert "train/loss" in events.Tags()["scalars"]


def test_wandb_gets_the_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=1", "images_every_n_epochs=1", "logger=wandb"])
    media = next((tmp_path / "wandb").glob("offline-run-*/files/media/images/images"))
    assert sorted(p.name.split("_")[0] for p in media.glob("*.png")) == sorted(NAMES)


def test_pictures_do_not_change_training(tmp_path: Path) -> None:
    overrides = [*EPOCHS, "trainer.max_epochs=2"]
    train_tiny(tmp_path / "with", [*overrides, "images_every_n_epochs=1"])
    train_tiny(tmp_path / "without", [*overrides, "images_every_n_epochs=null"])
    assert not (tmp_path / "without" / "figures").exists()
    rows = [read_metrics(tmp_path / run / "metrics.csv") for run in ("with", "without")]
    assert [r["train/loss"] for r in rows[0]] == [r["train/loss"] for r in rows[1]]


def test_kl_per_dimension_sums_to_the_closed_form_kl() -> None:
    class Encoder(torch.nn.Module):
        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x[:, :3], x[:, 3:]

    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    per_dim = kl_per_dimension(Encoder(), x)
    zeros = torch.zeros(50, 3)
    assert len(per_dim) == 3 and min(per_dim) > 0
    assert sum(per_dim) == pytest.approx(float(kl_normal(x[:, :3], x[:, 3:], zeros, zeros).mean()), rel=1e-5)


def test_each_row_gets_its_label_in_the_margin() -> None:
    picture = torch.full((3, 3 * 34 + 2, 5 * 34 + 2), 0.5)
    labelled = label_rows(picture, ["z3  KL 2.10", "z0  KL 1.00", "z1  KL 0.01"])
    assert labelled.shape == (3, 3 * 34 + 2, LABEL_WIDTH + 5 * 34 + 2)
    assert torch.equal(labelled[:, :, LABEL_WIDTH:], (picture * 255).round() / 255)
    margin = labelled[0, :, :LABEL_WIDTH]
    for row in range(3):
        band = margin[2 + 34 * row : 2 + 34 * (row + 1)]
        assert (band < 0.5).sum() > 20, f"no text in row {row}"  # dark glyph pixels on white


def test_log_every_n_steps_sends_the_step_loss_to_tensorboard_but_not_to_metrics_csv(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=2", "log_every_n_steps=2", "logger=tensorboard"])
    events = EventAccumulator(str(tmp_path / "tensorboard")).Reload()
    losses = events.Scalars("train/loss_step")
    assert [e.step for e in losses] == [2, 4]
    assert all(0 < e.value < 1e4 for e in losses)
    assert "train/loss_step" not in read_metrics(tmp_path / "metrics.csv")[0]
