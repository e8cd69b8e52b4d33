"""MNIST / Fashion-MNIST: the real files, in-memory batching, splits, and clear data errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from tests.conftest import ROOT, compose_train
from vae_gjs import datadir
from vae_gjs.data import MNIST, FashionMNIST, InMemoryBatches, Split, UInt8Images
from vae_gjs.data.idx import read_idx
from vae_gjs.errors import DataError


@pytest.mark.parametrize(
    ("cls", "tv_cls"),
    [(MNIST, torchvision.datasets.MNIST), (FashionMNIST, torchvision.datasets.FashionMNIST)],
)
def test_real_splits_match_torchvision_and_are_padded_to_32(data_dir: Path, cls: type, tv_cls: type) -> None:
    dm = cls(root=str(data_dir), download=False)
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 60_000, "test": 10_000}
    assert dm.image_shape == (1, 32, 32)
    reference = tv_cls(str(data_dir), train=False, download=False)
    pixels = dm.splits["test"].images.pixels
    assert pixels.dtype == torch.uint8 and pixels.shape == (10_000, 1, 32, 32)
    assert torch.equal(pixels[:, 0, 2:30, 2:30], reference.data)
    assert torch.equal(dm.splits["test"].targets, reference.targets)
    border = pixels.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.sum() == 0


def test_batches_are_floats_in_unit_interval(data_dir: Path) -> None:
    dm = MNIST(root=str(data_dir), download=False)
    dm.setup()
    x, y = next(iter(dm.loader("test", batch_size=128)))
    assert x.shape == (128, 1, 32, 32) and x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(x, dm.splits["test"].images.pixels[:128].float() / 255)
    assert y.dtype == torch.long and set(y.tolist()) <= set(range(10))


def test_validation_split_is_held_out_deterministically(data_dir: Path) -> None:
    a = MNIST(root=str(data_dir), download=False, val_size=5000, split_seed=3)
    b = MNIST(root=str(data_dir), download=False, val_size=5000, split_seed=3)
    a.setup()
    b.setup()
    assert (len(a.splits["train"]), len(a.splits["val"])) == (55_000, 5000)
    train_idx, val_idx = a.splits["train"].images.indices, a.splits["val"].images.indices
    assert torch.equal(val_idx, b.splits["val"].images.indices)
    assert len(set(train_idx.tolist()) | set(val_idx.tolist())) == 60_000


def _toy_split(n: int) -> Split:
    pixels = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return Split(UInt8Images(pixels), torch.arange(n))


def test_an_epoch_visits_every_image_once_with_a_partial_last_batch() -> None:
    loader = InMemoryBatches(_toy_split(10), batch_size=4, shuffle=True, seed=1)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == list(range(10))
    for x, y in batches:
        assert torch.equal(x[:, 0, 0, 0] * 255, y.float())


def test_shuffling_depends_on_seed_and_epoch_only() -> None:
    epoch = [0]
    loader = InMemoryBatches(_toy_split(50), batch_size=50, shuffle=True, seed=7, epoch=lambda: epoch[0])
    first = next(iter(loader))[1]
    again = next(iter(InMemoryBatches(_toy_split(50), batch_size=50, shuffle=True, seed=7)))[1]
    epoch[0] = 1
    second = next(iter(loader))[1]
    assert torch.equal(first, again)
    assert not torch.equal(first, second)


def test_ranks_share_an_epoch_without_overlap() -> None:
    shards = [
        torch.cat(
            [y for _, y in InMemoryBatches(_toy_split(23), 4, shuffle=True, seed=2, rank=r, world_size=2)]
        )
        for r in range(2)
    ]
    assert sorted(torch.cat(shards).tolist()) == list(range(23))
    assert [len(InMemoryBatches(_toy_split(23), 4, True, rank=r, world_size=2)) for r in range(2)] == [3, 3]


def test_missing_folder_names_the_folder_and_the_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        MNIST(root=str(tmp_path / "nowhere"), download=False).setup()
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "VAE_GJS_DATA_DIR" in message


def test_failed_download_says_where_to_put_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError) as info:
        MNIST(root=str(tmp_path), download=True).setup()
    assert "download failed" in str(info.value) and str(tmp_path / "MNIST" / "raw") in str(info.value)


def test_default_data_folder_env_then_local_then_shared_beside_the_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ROOT.parent / "shared" / "data" == datadir.SHARED_DATA_DIR  # beside this clone
    shared = tmp_path / "shared" / "data"
    monkeypatch.setattr(datadir, "SHARED_DATA_DIR", shared)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VAE_GJS_DATA_DIR", raising=False)
    assert datadir.default_data_dir() == "data"  # nothing anywhere: ./data, where downloads go
    shared.mkdir(parents=True)
    assert datadir.default_data_dir() == str(shared)
    assert compose_train().data_dir == str(shared)  # what train.py's config resolves to
    (tmp_path / "data").mkdir()
    assert datadir.default_data_dir() == "data"
    monkeypatch.setenv("VAE_GJS_DATA_DIR", "/elsewhere")
    assert datadir.default_data_dir() == "/elsewhere" and datadir.data_root() == Path("/elsewhere")


@pytest.fixture
def raw_copy(data_dir: Path, tmp_path: Path) -> Path:
    shutil.copytree(data_dir / "MNIST" / "raw", tmp_path / "MNIST" / "raw")
    return tmp_path


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_file_is_a_clear_error(raw_copy: Path, damage: str) -> None:
    path = raw_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    path.write_bytes(
        data[:-100] if damage == "truncate" else bytes(data[:50]) + bytes([data[50] ^ 1]) + bytes(data[51:])
    )
    with pytest.raises(DataError, match=r"corrupt data file .*t10k-labels-idx1-ubyte: SHA-256"):
        MNIST(root=str(raw_copy), download=False).setup()


def test_idx_reader_rejects_truncated_and_foreign_files(raw_copy: Path) -> None:
    path = raw_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    assert read_idx(path).shape == (10_000,)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DataError, match="magic"):
        read_idx(path)
