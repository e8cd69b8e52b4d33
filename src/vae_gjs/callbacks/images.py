"""Pictures while training: reconstructions, prior samples and labelled latent traversals of fixed
test images, every few epochs, to every logger that takes images and as PNGs in the run folder.

The pictures are those of ``evaluate.py`` (:mod:`vae_gjs.evaluation.images`), traversal rows
labelled alike with their latent dimension and its KL(q‖p), here on the first test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from vae_gjs.data.base import ImageSource
from vae_gjs.errors import check_positive_int
from vae_gjs.evaluation.images import (
    COLUMNS,
    kl_per_dimension,
    label_rows,
    reconstruction_grid,
    samples_grid,
    save_png,
    traversal_grid,
    traversal_labels,
)
from vae_gjs.rundir import training_picture

#: Test images shown as reconstructions (two rows of ten) and used for the per-dimension KL.
SHOWN, KL_IMAGES = 20, 500


class TrainingImages(Callback):
    """After every ``every_n_epochs``-th training epoch (and not during sanity checks), on rank 0:

    * ``reconstructions``: the first 20 test images, each row above its reconstruction (z = μ);
    * ``samples``: a 10×10 grid decoded from z ~ N(0, I), the same z every time (seeded);
    * ``traversals``: test image ``traversal_image`` with z_d swept over 10 values in
      [−traversal_range, traversal_range], one row per dimension, labelled ``z<d>  KL <value>``.

    Each picture is written atomically to ``<out_dir>/epoch_<NNN>_<name>.png`` (NNN: epochs done)
    and logged to W&B (``images/<name>``, as images), TensorBoard (``images/<name>``, as images)
    and any logger with a ``log_image`` method. The model is put in eval mode and back; the global
    random state is not touched, so training draws the same noise with or without this callback.
    """

    def __init__(
        self,
        out_dir: str | Path,
        every_n_epochs: int = 5,
        traversal_image: int = 0,
        traversal_range: float = 3.0,
        seed: int = 0,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.every_n_epochs = check_positive_int("images_every_n_epochs", every_n_epochs)
        self.traversal_image = traversal_image
        self.traversal_range = traversal_range
        self.seed = seed

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1
        if trainer.sanity_checking or not self.due(done) or not trainer.is_global_zero:
            return
        written = self.write(pl_module.net, trainer.datamodule.splits["test"].images, pl_module.device, done)
        for name, (picture, path) in written.items():
            self.send(trainer, name, picture, path)

    def due(self, epochs_done: int) -> bool:
        """Whether the pictures are due after ``epochs_done`` training epochs."""
        return not epochs_done % self.every_n_epochs

    def write(
        self, net: torch.nn.Module, images: ImageSource, device: torch.device, epochs_done: int
    ) -> dict[str, tuple[Tensor, Path]]:
        """The pictures of ``net`` (put in eval mode and back) for the test ``images`` after
        ``epochs_done`` epochs, written to their files
        (:func:`~vae_gjs.rundir.training_picture`): a separate run's and a fused member's."""
        was_training = net.training
        net.eval()
        try:
            pictures = self.pictures(net, images, device)
        finally:
            net.train(was_training)
        return {
            name: (picture, save_png(picture, training_picture(self.out_dir, epochs_done, name)))
            for name, picture in pictures.items()
        }

    @torch.inference_mode()
    def pictures(self, net: torch.nn.Module, images: ImageSource, device: torch.device) -> dict[str, Tensor]:
        """The three pictures of ``net`` for the test ``images`` (an indexable image source)."""
        count = len(images)
        shown = images.batch(torch.arange(min(SHOWN, count))).to(device)
        kl = kl_per_dimension(net, images.batch(torch.arange(min(KL_IMAGES, count))).to(device))
        dims = sorted(range(len(kl)), key=lambda d: -kl[d])
        traversed = images.batch(torch.tensor([min(self.traversal_image, count - 1)])).to(device)
        traversal = traversal_grid(net, traversed, dims, COLUMNS, self.traversal_range)
        return {
            "reconstructions": reconstruction_grid(net, shown),
            "samples": samples_grid(net, len(kl), 10, torch.Generator().manual_seed(self.seed)),
            "traversals": label_rows(traversal, traversal_labels(dims, kl)),
        }

    @staticmethod
    def send(trainer: L.Trainer, name: str, picture: Tensor, path: Path) -> None:
        """Send one picture to every logger that takes images."""
        from lightning.pytorch.loggers import TensorBoardLogger

        key, step = f"images/{name}", trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(key, picture, global_step=step)
            elif hasattr(logger, "log_image"):  # WandbLogger and others that take image files
                logger.log_image(key=key, images=[str(path)], step=step)


def training_images(out_dir: str | Path, every_n_epochs: int | None, **kwargs: Any) -> TrainingImages | None:
    """The callback of conf/callbacks/images/default.yaml: ``None`` (no pictures) when
    ``images_every_n_epochs`` is null."""
    return None if every_n_epochs is None else TrainingImages(out_dir, every_n_epochs, **kwargs)
