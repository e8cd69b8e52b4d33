"""Datasets as in-memory tensors and their Lightning DataModules (one file per dataset family)."""

from vae_gjs.data.base import InMemoryBatches, InMemoryDataModule, Split, UInt8Images
from vae_gjs.data.mnist import MNIST, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "InMemoryBatches", "InMemoryDataModule", "Split", "UInt8Images"]
from vae_gjs.data.chairs import Chairs
from vae_gjs.data.dsprites import DSprites

__all__ += ["Chairs", "DSprites"]
