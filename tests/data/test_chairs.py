"""3D Chairs: preprocessing of a tiny rendered_chairs archive made here (same layout as Aubry et
al.'s), the checksummed cache, the split by chair model, and the error without an archive."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import compose_train
from vae_gjs.data import Chairs
from vae_gjs.data import chairs as C
from vae_gjs.errors import ConfigError, DataError

MODELS = [f"{k:02x}c0ffee{k:024x}" for k in (3, 1, 4, 5, 2)]  # hash-like folder names, unsorted
VIEWS = 3


def _render(model: int, view: int, mode: str = "RGB") -> bytes:
    """A 600×600 'render': white, a black frame outside the central 400×400 crop, and a gray
    square whose level encodes the model and view."""
    image = Image.new(mode, (600, 600), "white")
    pixels = np.array(image)
    pixels[:50], pixels[-50:], pixels[:, :50], pixels[:, -50:] = 0, 0, 0, 0
    level = 40 + 30 * model + 5 * view
    pixels[250:350, 250:350, :3] = level
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_archive(folder: Path) -> Path:
    """``<folder>/chairs/rendered_chairs.tar`` with Aubry et al.'s layout, 5 models × 3 views."""
    path = folder / "chairs" / C.ARCHIVE
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w") as archive:
        _add(archive, "rendered_chairs/all_chair_names.mat", b"MATLAB 5.0 MAT-file (not an image)")
        for k, model in enumerate(MODELS):
            for view in range(VIEWS):
                name = f"rendered_chairs/{model}/renders/image_{view:03d}_p020_t{view * 11:03d}_r096.png"
                _add(archive, name, _render(k, view, "RGBA" if view == 2 else "RGB"))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_archive(tmp_path)
    return tmp_path


def test_preprocess_flattens_crops_and_resizes_to_64_gray() -> None:
    cropped = C.preprocess(_render(0, 0), crop=400)
    assert cropped.shape == (64, 64) and cropped.dtype == np.uint8
    assert cropped[0].min() == 255 and cropped[:, 0].min() == 255  # the frame lies outside the crop
    assert abs(int(cropped[32, 32]) - 40) <= 2  # the gray square, scaled 100/400 of the side
    whole = C.preprocess(_render(0, 0), crop=None)
    assert whole[0].max() < 40 and whole[32, 32] < 255  # no crop: the frame is in the image
    red = io.BytesIO()
    Image.new("RGB", (600, 600), (255, 0, 0)).save(red, format="PNG")
    assert set(np.unique(C.preprocess(red.getvalue(), crop=400))) == {76}  # ITU-R 601 luma
    clear = io.BytesIO()
    Image.new("RGBA", (600, 600), (0, 0, 0, 0)).save(clear, format="PNG")
    assert set(np.unique(C.preprocess(clear.getvalue(), crop=400))) == {255}  # transparent -> white
    assert C.model_of("rendered_chairs/abc/renders/image_000_p020_t000_r096.png") == "abc"
    assert C.model_of("rendered_chairs/all_chair_names.mat") is None


def test_archive_is_preprocessed_once_into_a_checksummed_cache(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dm = Chairs(root=str(root), download=False, test_set="train")
    dm.setup()
    images = dm.splits["train"].images.pixels
    assert images.shape == (len(MODELS) * VIEWS, 1, 64, 64) and images.dtype == torch.uint8
    assert dm.models.tolist() == sorted(MODELS)
    order = np.argsort(MODELS)  # model index k in sorted order drew level 40 + 30·MODELS.index(...)
    expected = [40 + 30 * int(order[m]) + 5 * v for m in range(len(MODELS)) for v in range(VIEWS)]
    assert np.abs(images[:, 0, 32, 32].numpy().astype(int) - expected).max() <= 2
    assert dm.splits["train"].targets.tolist() == [m for m in range(len(MODELS)) for _ in range(VIEWS)]
    cache = dm.cache_path(root)
    assert cache.name == "chairs64_crop400.npz" and (cache.parent / (cache.name + ".json")).is_file()

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("preprocessed again instead of reading the cache")

    monkeypatch.setattr(C, "build", no_build)
    (root / "chairs" / C.ARCHIVE).unlink()  # the cache alone is enough now
    again = Chairs(root=str(root), download=False, test_set="train")
    again.setup()
    assert torch.equal(again.splits["train"].images.pixels, images)
    x, _ = next(iter(again.loader("train", batch_size=4)))
    assert x.shape == (4, 1, 64, 64) and x.dtype == torch.float32 and x.min() >= 0 and x.max() == 1.0


def test_extracted_folder_gives_the_same_array(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("extracted")
    with tarfile.open(root / "chairs" / C.ARCHIVE) as archive:
        archive.extractall(other / "chairs", filter="data")
    from_tar = C.build(root / "chairs" / C.ARCHIVE, crop=400)
    from_folder = C.build(other / "chairs" / C.EXTRACTED, crop=400)
    assert all(np.array_equal(from_tar[k], from_folder[k]) for k in from_tar)


def test_held_out_split_is_by_chair_model_and_deterministic(root: Path) -> None:
    dm = Chairs(root=str(root), download=False, test_fraction=0.2)
    dm.setup()
    train_models = set(dm.splits["train"].targets.tolist())
    test_models = set(dm.splits["test"].targets.tolist())
    assert len(test_models) == 1 and len(train_models) == len(MODELS) - 1 and not train_models & test_models
    assert len(dm.splits["test"]) == VIEWS  # every view of the held-out model
    again = Chairs(root=str(root), download=False, test_fraction=0.2)
    again.setup()
    assert torch.equal(again.splits["test"].images.indices, dm.splits["test"].images.indices)
    paper = Chairs(root=str(root), download=False, test_set="train")
    paper.setup()
    assert paper.splits["test"] is paper.splits["train"]


def test_no_archive_offline_names_the_url_and_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError) as error:
        Chairs(root=str(tmp_path), download=False).setup()
    assert C.URL in str(error.value) and str(tmp_path / "chairs") in str(error.value)

    def offline(url: str, destination: Path, *args: object, **kwargs: object) -> Path:
        raise DataError(f"could not download {url} (no network)")

    monkeypatch.setattr(C, "download_file", offline)
    with pytest.raises(DataError, match="the download failed") as error:
        Chairs(root=str(tmp_path), download=True).setup()
    assert C.URL in str(error.value) and str(tmp_path / "chairs") in str(error.value)


def test_corrupt_cache_and_bad_options_are_reported(root: Path) -> None:
    dm = Chairs(root=str(root), download=False)
    dm.setup()
    cache = dm.cache_path(root)
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"corrupt cache file {re.escape(str(cache))}"):
        Chairs(root=str(root), download=False).setup()
    with pytest.raises(ConfigError, match=r"dataset\.crop"):
        Chairs(root=str(root), crop=10)
    with pytest.raises(DataError, match="larger than"):
        C.preprocess(_render(0, 0), crop=700)
    archive = root / "chairs" / C.ARCHIVE  # the same error from the dataset names the render
    first = f"rendered_chairs/{sorted(MODELS)[0]}/renders/image_000_p020_t000_r096.png"
    with pytest.raises(DataError) as error:
        C.build(archive, crop=700)
    assert str(error.value) == (
        f"dataset.crop=700 is larger than a 600×600 render ({first} in {archive}); "
        "allowed: a smaller dataset.crop or null"
    )


def test_dataset_chairs_config_builds_the_64x64_model(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from vae_gjs.models.burgess import conv_layers

    cfg = compose_train(
        ["dataset=chairs", "divergence=gjs", "alpha=0.2", f"data_dir={tmp_path}"], run_dir=tmp_path
    )
    dm = instantiate(cfg.dataset)
    assert isinstance(dm, Chairs) and dm.crop == 400 and dm.test_set == "heldout"
    assert dm.image_shape == (1, 64, 64) and conv_layers(64) == 4
