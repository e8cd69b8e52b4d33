"""MNIST and Fashion-MNIST (standard 60k/10k splits), zero-padded from 28×28 to 32×32."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch.nn.functional as F

from vae_gjs.data.base import InMemoryDataModule, Split, UInt8Images
from vae_gjs.data.files import verify
from vae_gjs.data.idx import read_idx
from vae_gjs.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class MNISTFamily(InMemoryDataModule):
    """A 28×28 IDX dataset in torchvision's layout ``<root>/<folder>/raw/*-ubyte``.

    The raw (uncompressed) files are checked against their SHA-256; missing files are
    downloaded with torchvision where the internet exists (``download=True``).
    """

    folder: ClassVar[str]
    sha256: ClassVar[dict[str, str]]
    torchvision_class: ClassVar[str]

    def __init__(self, *args: object, download: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.download = download

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, 32, 32)

    def raw_folder(self, root: Path) -> Path:
        return root / self.folder / "raw"

    def _fetch(self, root: Path) -> None:
        import torchvision.datasets

        try:
            getattr(torchvision.datasets, self.torchvision_class)(str(root), train=True, download=True)
            getattr(torchvision.datasets, self.torchvision_class)(str(root), train=False, download=True)
        except Exception as error:  # torchvision raises RuntimeError/URLError without network
            raise DataError(
                f"{self.name}: files missing in {self.raw_folder(root)} and the download failed "
                f"({str(error).strip().splitlines()[0]}). "
                f"Without internet, put {', '.join(self.sha256)} there (torchvision layout), "
                "or point VAE_GJS_DATA_DIR / data_dir= at a folder that has them."
            ) from error

    def load(self, root: Path) -> dict[str, Split]:
        folder = self.raw_folder(root)
        if self.download and not all((folder / name).is_file() for name in self.sha256):
            self._fetch(root)
        verify(folder, self.sha256)
        splits = {}
        for split, (images, labels) in FILES.items():
            pixels = F.pad(read_idx(folder / images).unsqueeze(1), (2, 2, 2, 2))
            splits[split] = Split(UInt8Images(pixels.contiguous()), read_idx(folder / labels).long())
        return splits


class MNIST(MNISTFamily):
    """MNIST handwritten digits (LeCun et al.)."""

    name = "mnist"
    folder = "MNIST"
    torchvision_class = "MNIST"
    sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }


class FashionMNIST(MNISTFamily):
    """Fashion-MNIST clothing images (Xiao et al., 2017)."""

    name = "fmnist"
    folder = "FashionMNIST"
    torchvision_class = "FashionMNIST"
    sha256: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
