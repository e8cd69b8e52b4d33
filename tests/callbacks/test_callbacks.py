"""The callbacks/ config group: the default callbacks, callbacks added or dropped on the command
line, and the Trainer arguments that belong to other groups."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping

from tests.conftest import TINY, compose_train, train_tiny
from vae_gjs.callbacks import EpochBookkeeping, LastAndBestCheckpoint, ProgressBar, RandomState, progress_bar
from vae_gjs.callbacks.images import TrainingImages
from vae_gjs.callbacks.step_loss import StepLoss
from vae_gjs.config import validate
from vae_gjs.errors import ConfigError
from vae_gjs.lifecycle import instantiate_all
from vae_gjs.tasks.train import trainer_kwargs


def test_default_group_builds_checkpoint_bookkeeping_random_state_and_progress_bar(tmp_path: Path) -> None:
    cfg = compose_train(["trainer.enable_progress_bar=true"], run_dir=tmp_path)
    built = instantiate_all(cfg.callbacks)
    assert [type(c) for c in built] == [
        LastAndBestCheckpoint,
        EpochBookkeeping,
        RandomState,
        ProgressBar,
        TrainingImages,
        StepLoss,
    ]
    checkpoint = built[0]
    assert checkpoint.dirpath == str(tmp_path / "checkpoints") and checkpoint.monitor == "train/loss"
    assert checkpoint.save_last and checkpoint.save_top_k == 1 and checkpoint.filename == "best"
    with_val = compose_train(["dataset.val_size=100"], run_dir=tmp_path)  # a validation split is watched
    assert instantiate_all(with_val.callbacks)[0].monitor == "val/loss"


def test_callbacks_are_added_and_dropped_from_the_command_line(tmp_path: Path) -> None:
    cfg = compose_train(
        [
            "+callbacks/early_stopping=default",
            "callbacks.early_stopping.patience=7",
            "callbacks.progress_bar=null",
        ],
        run_dir=tmp_path,
    )
    built = instantiate_all(cfg.callbacks)
    assert [type(c) for c in built] == [
        LastAndBestCheckpoint,
        EpochBookkeeping,
        RandomState,
        TrainingImages,
        StepLoss,
        EarlyStopping,
    ]
    assert built[-1].patience == 7 and built[-1].monitor == "train/loss"
    assert progress_bar(enabled=False) is None  # trainer.enable_progress_bar=false: no bar at all


def test_a_callback_without_target_and_trainer_callbacks_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"callbacks\.mine has no _target_"):
        validate(compose_train(["+callbacks.mine.patience=3"], run_dir=tmp_path))
    for key, group in (("callbacks", "callbacks/ group"), ("logger", "logger/ group")):
        cfg = compose_train([f"+trainer.{key}=[]"], run_dir=tmp_path)
        with pytest.raises(
            ConfigError, match=rf"trainer\.{key} is not set here; allowed: set it through the {group}"
        ):
            trainer_kwargs(cfg)


@pytest.mark.slow
def test_early_stopping_from_the_command_line_stops_the_run(tmp_path: Path) -> None:
    """min_delta so large that no epoch after the first counts as an improvement: with patience 1
    the run stops after 2 epochs of 1 step, not at max_steps=4."""
    train_tiny(
        tmp_path,
        [
            "+callbacks/early_stopping=default",
            "callbacks.early_stopping.patience=1",
            "callbacks.early_stopping.min_delta=1e9",
            "trainer.limit_train_batches=1",
        ],
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert "trainer.max_steps=4" in TINY and results["steps"] == 2, results
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "completed"
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_pictures_and_step_loss_are_default_callbacks_that_null_turns_off(tmp_path: Path) -> None:
    built = instantiate_all(compose_train(run_dir=tmp_path).callbacks)
    images = next(c for c in built if isinstance(c, TrainingImages))
    assert images.every_n_epochs == 5 and images.out_dir == tmp_path / "figures"
    assert next(c for c in built if isinstance(c, StepLoss)).every_n_steps == 50
    off = compose_train(["images_every_n_epochs=null", "log_every_n_steps=null"], run_dir=tmp_path)
    assert not [c for c in instantiate_all(off.callbacks) if isinstance(c, (TrainingImages, StepLoss))]


def test_epoch_time_of_a_run_resumed_mid_epoch_counts_from_the_resumption() -> None:
    """Resumed inside an epoch (stopped by max_steps), Lightning calls no on_train_epoch_start:
    the epoch's time/epoch_s then counts from on_train_start instead of failing."""
    from types import SimpleNamespace

    logged: dict[str, float] = {}
    module = SimpleNamespace(log=lambda name, value, **_: logged.__setitem__(name, value))
    bookkeeping = EpochBookkeeping()
    bookkeeping.on_train_start(SimpleNamespace(loggers=[], current_epoch=3), module)  # type: ignore[arg-type]
    bookkeeping.on_train_epoch_end(SimpleNamespace(current_epoch=3), module)  # type: ignore[arg-type]
    assert 0 <= logged["time/epoch_s"] < 5


class _LossSequence(pl.LightningModule):
    """One step an epoch, logging ``train/loss`` from a given sequence (what the checkpoints watch)."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.losses = losses

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.log("train/loss", self.losses[self.current_epoch], on_epoch=True, on_step=False)
        return (self.weight * batch).sum()

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(torch.ones(1, 1), batch_size=1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_ckpt_is_the_last_epoch_even_when_the_loss_did_not_improve(tmp_path: Path) -> None:
    """Since Lightning 2.6, ``save_last`` skips an epoch without a new best: last.ckpt held the
    best epoch's weights (a 100-epoch MNIST run's held epoch 99). Losses 3, 1, 2, 4: best.ckpt is
    epoch 1, last.ckpt epoch 3; the state key is ModelCheckpoint's (old checkpoints resume)."""
    checkpoint = LastAndBestCheckpoint(
        dirpath=tmp_path,
        filename="best",
        monitor="train/loss",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    trainer = pl.Trainer(
        max_epochs=4,
        callbacks=[checkpoint],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_LossSequence([3.0, 1.0, 2.0, 4.0]))
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    best = torch.load(tmp_path / "best.ckpt", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (3, 4)
    assert (best["epoch"], best["global_step"]) == (1, 2)
    assert checkpoint.state_key.startswith("ModelCheckpoint{") and checkpoint.state_key in last["callbacks"]
    assert float(last["callbacks"][checkpoint.state_key]["best_model_score"]) == 1.0
