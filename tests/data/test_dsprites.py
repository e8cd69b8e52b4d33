"""dSprites: the factor grid, the procedural renderer (on small sub-grids only), bit-packed
windows, the checksummed cache, the real-file reader (on small synthetic npz files), the
held-out split, the fallback and its messages, and the comparison script."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, compose_train
from vae_gjs.data import DSprites
from vae_gjs.data import dsprites as D
from vae_gjs.data.base import PackedBitImages
from vae_gjs.data.shared import load_cache, save_cache
from vae_gjs.errors import ConfigError, DataError

SMALL = {"scale": [0, 5], "orientation": [0, 20], "posX": [0, 10, 20, 31], "posY": [0, 15, 31]}
RENDERER = D.SpriteRenderer()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _compare_script() -> ModuleType:
    """benchmarks/compare_dsprites.py (the statistics that compare two versions of the images)."""
    spec = importlib.util.spec_from_file_location(
        "compare_dsprites", ROOT / "benchmarks" / "compare_dsprites.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_factor_grid_matches_deepmind_metadata() -> None:
    values = D.factor_values()
    assert tuple(len(values[name]) for name in D.FACTORS) == D.SIZES and D.N_IMAGES == 737_280
    assert np.allclose(values["scale"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert values["orientation"][1] == pytest.approx(0.16110732) and values["orientation"][
        -1
    ] == pytest.approx(2 * np.pi)
    assert values["posX"][1] == pytest.approx(0.03225806) and values["posY"][-1] == 1.0
    classes = D.grid_classes(D.selection({"posX": [0, 1], "posY": [0, 1, 2]}))
    # posY varies fastest, then posX, ...; rows map back to DeepMind's flat index.
    assert classes[:4].tolist() == [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 2],
        [0, 0, 0, 0, 1, 0],
    ]
    assert D.flat_indices(classes[:4]).tolist() == [0, 1, 2, 32]
    assert D.flat_indices(np.array([[0, 2, 5, 39, 31, 31]])).tolist() == [D.N_IMAGES - 1]
    assert D.classes_to_values(classes[:1]).tolist() == [[1.0, 1.0, 0.5, 0.0, 0.0, 0.0]]
    with pytest.raises(ConfigError, match="posX"):
        D.selection({"posX": [32]})
    with pytest.raises(ConfigError, match="allowed: color, shape"):
        D.selection({"rotation": [0]})


def _reference(classes: np.ndarray) -> np.ndarray:
    """Square and ellipse drawn pixel by pixel from the renderer's documented geometry."""
    values = D.factor_values()
    out = []
    pixel = np.arange(64) + 0.5
    for c in classes:
        theta, unit = values["orientation"][c[3]], RENDERER.size * values["scale"][c[2]]
        u = (pixel[None, :] - RENDERER.centres(values["posX"][c[4]])) / unit
        v = (pixel[:, None] - RENDERER.centres(values["posY"][c[5]])) / unit
        a, b = np.cos(theta) * u + np.sin(theta) * v, -np.sin(theta) * u + np.cos(theta) * v
        half = RENDERER.ellipse_length / 2
        if c[1] == 0:
            out.append(np.maximum(abs(a), abs(b)) <= 0.5)
        else:
            out.append((a / half) ** 2 + (b / (half * RENDERER.ellipse_ratio)) ** 2 <= 1)
    return np.stack(out)


def test_renderer_is_deterministic_binary_and_follows_the_factors() -> None:
    sel = D.selection(SMALL)
    packed = RENDERER.render(sel)
    classes = D.grid_classes(sel)
    assert packed.shape == (len(classes), 512) and packed.dtype == np.uint8
    assert np.array_equal(packed, D.SpriteRenderer().render(sel))
    images = D.unpack(packed)
    assert set(np.unique(images)) == {0, 1} and images.sum(axis=(1, 2)).min() > 20
    squares_and_ellipses = classes[:, 1] < 2
    assert np.array_equal(images[squares_and_ellipses], _reference(classes[squares_and_ellipses]))
    stats = _compare_script().image_statistics(packed, classes)
    for shape in range(3):  # areas grow with scale², shapes differ
        small, large = stats["area"][shape][0], stats["area"][shape][5]
        assert large / small == pytest.approx(4.0, rel=0.08)
    assert len({round(stats["area"][s][5]) for s in range(3)}) == 3
    # posX moves the centroid right, posY down, by 32/31 px a step, from 16 px to 48 px.
    for name, index in (("centroid_x", 4), ("centroid_y", 5)):
        steps = np.array(SMALL[D.FACTORS[index]])
        centroids = np.array([stats[name][k] for k in steps])
        assert np.allclose(centroids, 16 + steps * 32 / 31, atol=0.6), centroids


def test_shapes_are_never_clipped_and_orientations_0_and_2pi_coincide() -> None:
    sel = D.selection({"scale": [5], "orientation": [0, 5, 13, 39], "posX": [0, 31], "posY": [0, 31]})
    images = D.unpack(RENDERER.render(sel)).reshape(3, 4, 4, 64, 64)
    assert images[..., 0, :].sum() == images[..., -1, :].sum() == images[..., :, 0].sum() == 0
    assert images[..., :, -1].sum() == 0
    assert np.array_equal(images[:, 0], images[:, 3])  # orientation 0 == 2π, as in the real file
    assert not np.array_equal(images[:, 0], images[:, 1])


def test_bit_packed_windows_round_trip_and_batch_as_floats() -> None:
    sel = D.selection(SMALL)
    whole = torch.from_numpy(D.unpack(RENDERER.render(sel))).float()
    windows, offsets = RENDERER.render_windows(sel)
    assert windows.shape == (len(whole), 32 * 32 // 8)  # 128 bytes an image instead of 4096
    images = PackedBitImages(torch.from_numpy(windows), (1, 64, 64), torch.from_numpy(offsets), (32, 32))
    order = torch.randperm(len(whole), generator=torch.Generator().manual_seed(0))
    batch = images.batch(order)
    assert batch.shape == (len(whole), 1, 64, 64) and batch.dtype == torch.float32
    assert torch.equal(batch[:, 0], whole[order])
    # Tight windows from whole images (the real file's path) decode to the same images.
    tight, corners, side = D.to_windows(RENDERER.render(sel), chunk=50)
    assert side == 32
    again = PackedBitImages(torch.from_numpy(tight), (1, 64, 64), torch.from_numpy(corners), (side, side))
    assert torch.equal(again.batch(order), batch)
    plain = PackedBitImages(torch.from_numpy(RENDERER.render(sel)), (1, 64, 64))
    assert torch.equal(plain.batch(order), batch)
    with pytest.raises(ValueError, match="uint8"):
        PackedBitImages(torch.zeros(3, 100, dtype=torch.uint8), (1, 64, 64))


def test_cache_round_trip_detects_corruption_and_stale_settings(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    arrays = {"windows": np.arange(24, dtype=np.uint8).reshape(3, 8), "offsets": np.ones((3, 2), np.uint8)}
    assert load_cache(path, {"v": 1}) is None
    assert save_cache(path, arrays, {"v": 1})
    loaded = load_cache(path, {"v": 1})
    assert loaded is not None and all(np.array_equal(loaded[k], v) for k, v in arrays.items())
    assert load_cache(path, {"v": 2}) is None  # other settings: rebuild
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"corrupt cache file .*cache\.npz: SHA-256"):
        load_cache(path, {"v": 1})
    (tmp_path / "cache.npz.json").unlink()
    assert load_cache(path, {"v": 1}) is None  # no manifest: an interrupted write, rebuild


def _module(root: Path, **kwargs: object) -> DSprites:
    return DSprites(root=str(root), download=False, factors=SMALL, **{"source": "procedural", **kwargs})


def test_procedural_source_is_cached_and_held_out_split_is_deterministic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dm = _module(tmp_path)
    dm.setup()
    n = 3 * 2 * 2 * 4 * 3
    assert dm.image_shape == (1, 64, 64) and dm.source_used == "procedural"
    assert (len(dm.splits["train"]), len(dm.splits["test"])) == (n - round(0.1 * n), round(0.1 * n))
    train_idx, test_idx = dm.splits["train"].images.indices, dm.splits["test"].images.indices
    assert not set(train_idx.tolist()) & set(test_idx.tolist())
    assert sorted(train_idx.tolist() + test_idx.tolist()) == list(range(n))
    assert torch.equal(
        dm.splits["test"].targets, torch.from_numpy(dm.latents_classes[test_idx.numpy(), 1]).long()
    )
    caches = list((tmp_path / "dsprites").glob("dsprites_procedural_v1_*.npz"))
    assert len(caches) == 1 and (caches[0].parent / (caches[0].name + ".json")).is_file()

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(D.SpriteRenderer, "render_windows", no_rendering)
    again = _module(tmp_path)
    again.setup()
    assert torch.equal(again.splits["test"].images.indices, test_idx)
    x, _ = next(iter(again.loader("test", batch_size=8)))
    assert torch.equal(x, dm.splits["test"].images.batch(torch.arange(8)))
    other = _module(tmp_path, test_seed=1)
    other.setup()
    assert not torch.equal(other.splits["test"].images.indices, test_idx)


def test_test_set_train_evaluates_on_the_training_set(tmp_path: Path) -> None:
    dm = _module(tmp_path, test_set="train")
    dm.setup()
    assert dm.splits["test"] is dm.splits["train"] and len(dm.splits["train"]) == 144
    with pytest.raises(ConfigError, match="test_set"):
        _module(tmp_path, test_set="val")
    with pytest.raises(ConfigError, match="test_fraction"):
        _module(tmp_path, test_fraction=1.0)


def test_corrupt_procedural_cache_is_reported_with_its_name(tmp_path: Path) -> None:
    _module(tmp_path).setup()
    (cache,) = (tmp_path / "dsprites").glob("*.npz")
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0x01
    cache.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"corrupt cache file {re.escape(str(cache))}"):
        _module(tmp_path).setup()


def test_auto_falls_back_to_the_renderer_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = _module(tmp_path, source="auto")
    with caplog.at_level(logging.WARNING, logger="vae_gjs.data.dsprites"):
        dm.setup()
    assert dm.source_used == "procedural"
    assert "using the procedural renderer" in caplog.text and D.FILENAME in caplog.text


def test_real_source_without_the_file_names_url_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        _module(tmp_path, source="real").setup()
    assert D.URL in str(error.value) and str(tmp_path / "dsprites") in str(error.value)


def test_a_real_file_with_the_wrong_md5_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    (tmp_path / "dsprites").mkdir()
    (tmp_path / "dsprites" / D.FILENAME).write_bytes(b"not the real file")
    with pytest.raises(DataError, match=f"corrupt data file .*{re.escape(D.FILENAME)}: MD5"):
        _module(tmp_path, source="auto").setup()


def _synthetic_npz(path: Path, factors: dict, shift_hearts: bool = False) -> np.ndarray:
    """An npz in DeepMind's layout holding the renderer's images of a sub-grid (hearts shifted
    one pixel right when asked, to stand for a renderer that differs from the real images)."""
    sel = D.selection(factors)
    classes = D.grid_classes(sel)
    images = D.unpack(RENDERER.render(sel))
    if shift_hearts:
        images[classes[:, 1] == 2] = np.roll(images[classes[:, 1] == 2], 1, axis=2)
    np.savez_compressed(
        path,
        imgs=images,
        latents_classes=classes.astype(np.int64),
        latents_values=D.classes_to_values(classes),
    )
    return images


def test_read_npz_streams_checks_and_windows_the_real_layout(tmp_path: Path) -> None:
    path = tmp_path / "small.npz"
    images = _synthetic_npz(path, SMALL)
    packed, classes = D.read_npz(path, chunk=7)
    assert np.array_equal(D.unpack(packed), images)
    assert np.array_equal(classes, D.grid_classes(D.selection(SMALL)))
    windows, offsets, classes_again = D.read_npz_windows(path, chunk=7)
    side = math.isqrt(windows.shape[1] * 8)
    decoded = PackedBitImages(torch.from_numpy(windows), (1, 64, 64), torch.from_numpy(offsets), (side, side))
    assert np.array_equal(decoded.batch(torch.arange(len(images)))[:, 0].numpy(), images)
    assert np.array_equal(classes_again, classes)
    np.savez(tmp_path / "gray.npz", imgs=images * 255, latents_classes=classes)
    with pytest.raises(DataError, match="other than 0 and 1"):
        D.read_npz(tmp_path / "gray.npz")
    np.savez(tmp_path / "shuffled.npz", imgs=images, latents_classes=classes[::-1])
    with pytest.raises(DataError, match="DeepMind's order"):
        D.read_npz(tmp_path / "shuffled.npz")


def test_compare_script_reports_agreement_areas_and_centroids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fake_real.npz"
    factors = {"scale": [0, 5], "orientation": [0, 20], "posX": [0, 31], "posY": [0, 31]}
    _synthetic_npz(path, factors, shift_hearts=True)
    out = tmp_path / "comparison.json"
    script = _compare_script()
    assert script.main(["--real", str(path), "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["agreement"]["mean_iou"]["square"] == report["agreement"]["mean_iou"]["ellipse"] == 1.0
    assert report["agreement"]["mean_iou"]["heart"] < 1.0
    real, ours = report["real"], report["procedural"]
    assert real["centroid_x"]["0"] == pytest.approx(ours["centroid_x"]["0"] + 1.0 / 3, abs=1e-6)
    assert real["centroid_y"] == ours["centroid_y"] and real["area"] == ours["area"]
    assert "mean IoU" in stdout and "centroid" in stdout and "distinct images" in stdout


def test_dataset_dsprites_config_builds_the_64x64_model(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    from vae_gjs.models.burgess import conv_layers
    from vae_gjs.module import build_module

    cfg = compose_train(
        ["dataset=dsprites", "divergence=dgjs", "alpha=0.5", f"data_dir={tmp_path}"], run_dir=tmp_path
    )
    dm = instantiate(cfg.dataset)
    assert isinstance(dm, DSprites) and dm.source == "auto" and dm.test_set == "heldout"
    assert dm.image_shape == (1, 64, 64) and conv_layers(dm.image_shape[1]) == 4
    module = build_module(cfg.module, dm.image_shape)
    x = torch.zeros(2, *dm.image_shape)
    logits, mu, _ = module(x)
    assert logits.shape == x.shape and mu.shape == (2, cfg.model.latent_dim)
