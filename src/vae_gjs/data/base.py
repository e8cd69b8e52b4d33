"""Whole datasets as tensors in memory, batched by indexing: the data path never starves the model.

A dataset family provides :class:`Split`s (an :class:`ImageSource` plus integer targets);
:class:`InMemoryDataModule` turns them into train/val/test loaders of ``(images, targets)``
with float images in [0, 1] of shape ``[B, C, H, W]``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lightning as L
import torch
from torch import Tensor

from vae_gjs.datadir import data_root
from vae_gjs.errors import ConfigError, check_int, check_positive_int


class ImageSource(Protocol):
    """Images addressable by index; ``batch`` returns float images in [0, 1], ``[b, C, H, W]``."""

    shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def batch(self, indices: Tensor) -> Tensor: ...


@dataclass
class UInt8Images:
    """Images kept as one ``uint8`` tensor ``[N, C, H, W]``; a batch is one gather and one scale."""

    pixels: Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def batch(self, indices: Tensor) -> Tensor:
        return self.pixels[indices].float().div_(255.0)


#: Shifts that take a byte to its 8 pixels, most significant bit first (``np.packbits`` order).
_BIT_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)


@dataclass
class PackedBitImages:
    """Binary images kept bit-packed, 8 pixels a byte, most significant bit first (``np.packbits``).

    Without ``offsets``, ``packed[i]`` is image ``i`` flattened (C, H, W): ``[N, C·H·W/8]`` uint8,
    1/8 of :class:`UInt8Images`. With ``offsets``, ``packed[i]`` holds only a ``window`` = (h, w)
    crop of image ``i`` (flattened (C, h, w)), whose top-left corner is at ``offsets[i]`` =
    (row, col); the rest of the image is 0 (for small objects on an empty background).
    A batch is one gather, one shift and one mask (plus one scatter for windows).
    """

    packed: Tensor
    shape: tuple[int, int, int]
    offsets: Tensor | None = None
    window: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        channels, height, width = self.shape
        h, w = self.window if self.offsets is not None and self.window else (height, width)
        pixels = channels * h * w
        if pixels % 8 or self.packed.dtype != torch.uint8 or self.packed.shape[1:] != (pixels // 8,):
            raise ValueError(f"packed images of {self.shape} (window {h}×{w}) need uint8 [N, {pixels / 8:g}]")
        if self.offsets is not None and (
            self.offsets.shape != (self.packed.shape[0], 2) or not h <= height or not w <= width
        ):
            raise ValueError(f"offsets must be [N, 2] (row, col) of {h}×{w} windows inside {height}×{width}")
        self._grid = (torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w))

    def __len__(self) -> int:
        return self.packed.shape[0]

    def batch(self, indices: Tensor) -> Tensor:
        n = indices.shape[0]
        bits = ((self.packed[indices].unsqueeze(-1) >> _BIT_SHIFTS) & 1).float()
        if self.offsets is None:
            return bits.view(n, *self.shape)
        channels, height, width = self.shape
        h, w = self._grid[0].shape[1], self._grid[1].shape[2]
        corner = self.offsets[indices].long()
        rows = corner[:, 0].view(n, 1, 1) + self._grid[0]
        cols = corner[:, 1].view(n, 1, 1) + self._grid[1]
        images = bits.new_zeros(n, channels, height, width)
        images[torch.arange(n).view(n, 1, 1), :, rows, cols] = bits.view(n, channels, h, w).permute(
            0, 2, 3, 1
        )
        return images


@dataclass
class Split:
    """One split of a dataset: images and a target per image (class label, factor index, model id)."""

    images: ImageSource
    targets: Tensor

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Tensor) -> Split:
        return Split(IndexedImages(self.images, indices), self.targets[indices])


@dataclass
class IndexedImages:
    """A view of an :class:`ImageSource` restricted to ``indices`` (no copy of the pixels)."""

    source: ImageSource
    indices: Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.source.shape

    def __len__(self) -> int:
        return self.indices.shape[0]

    def batch(self, indices: Tensor) -> Tensor:
        return self.source.batch(self.indices[indices])


class InMemoryBatches:
    """Mini-batches of a :class:`Split`, built by indexing with a permutation.

    Shuffling is seeded by ``(seed, epoch)`` so an epoch's order does not depend on how many
    epochs ran in this process: a resumed run sees the same batches as an uninterrupted one.
    Under DDP each rank takes every ``world_size``-th batch.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.split = split
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = epoch
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        batches = -(-len(self.split) // self.batch_size)
        return len(range(self.rank, batches, self.world_size))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.split)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch())
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for start in range(self.rank * self.batch_size, n, self.world_size * self.batch_size):
            indices = order[start : start + self.batch_size]
            yield self.split.images.batch(indices), self.split.targets[indices]


class InMemoryDataModule(L.LightningDataModule):
    """Base DataModule: subclasses implement :meth:`load` returning the ``train`` and ``test``
    splits; a validation split of ``val_size`` images is held out of ``train`` with ``split_seed``
    (``val_size=0``: no validation, the paper's protocol)."""

    name: str = ""

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 500,
        val_size: int = 0,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__()
        self.root = data_root(root)
        self.batch_size = check_positive_int("dataset.batch_size", batch_size)
        self.eval_batch_size = check_positive_int("dataset.eval_batch_size", eval_batch_size)
        self.val_size = check_int("dataset.val_size", val_size, 0)
        self.split_seed = split_seed
        self.shuffle_seed = shuffle_seed
        self.shuffle = shuffle  # false: the same batches every epoch (debug=overfit)
        self.splits: dict[str, Split] = {}

    @abstractmethod
    def load(self, root: Path) -> dict[str, Split]:
        """Read (download if needed and possible, verify) and return ``{"train": ..., "test": ...}``."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images; known before loading (the model is built from it)."""
        raise NotImplementedError

    @property
    def has_val(self) -> bool:
        return self.val_size > 0

    def prepare_data(self) -> None:
        """Download and verify once per node (Lightning calls this on one process)."""
        self.load(self.root)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        splits = self.load(self.root)
        train = splits["train"]
        if self.val_size >= len(train):
            raise ConfigError(
                f"dataset.val_size={self.val_size} leaves no training images ({self.name} has {len(train)}); "
                f"allowed: 0 <= dataset.val_size < {len(train)}"
            )
        if self.val_size:
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.split_seed))
            splits["val"] = train.subset(order[: self.val_size])
            splits["train"] = train.subset(order[self.val_size :].sort().values)
        self.splits = splits

    def _loader(self, split: str, train: bool) -> InMemoryBatches:
        trainer = self.trainer
        return InMemoryBatches(
            self.splits[split],
            self.batch_size if train else self.eval_batch_size,
            shuffle=train and self.shuffle,
            seed=self.shuffle_seed,
            epoch=(lambda: trainer.current_epoch) if trainer is not None else (lambda: 0),
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def train_dataloader(self) -> InMemoryBatches:
        images = len(self.splits["train"])
        if self.batch_size > images:  # one giant batch: a typo, not a plan
            raise ConfigError(
                f"dataset.batch_size={self.batch_size} is larger than the {images} training images of "
                f"{self.name}; allowed: 1 <= dataset.batch_size <= {images}"
            )
        return self._loader("train", train=True)

    def val_dataloader(self) -> InMemoryBatches | list[InMemoryBatches]:
        return self._loader("val", train=False) if self.has_val else []

    def test_dataloader(self) -> InMemoryBatches:
        return self._loader("test", train=False)

    def loader(self, split: str, batch_size: int | None = None) -> InMemoryBatches:
        """An ordered loader over any split (``train``, ``val``, ``test``) for evaluation."""
        self.setup()
        return InMemoryBatches(self.splits[split], batch_size or self.eval_batch_size, shuffle=False)
