"""How closely the procedural dSprites matches DeepMind's file, image by image and per factor.

    python benchmarks/compare_dsprites.py --real <data_dir>/dsprites/<DeepMind's npz>
    python benchmarks/compare_dsprites.py --real ... --every 4 --json out.json   # 1/16 of positions
    python benchmarks/compare_dsprites.py     # no real file: the renderer vs the published statistics

For the images in the real file (any factor sub-grid in DeepMind's order), the renderer draws
the same factor values, and the script prints: mean pixel value and mean per-image std (with
the published values), mean area per shape and scale, mean bounding-box side at orientation 0,
mean centroid per posX and per posY, and the pixel agreement (mean IoU, mean differing pixels,
identical images) per shape. ``--json`` writes all of it. The full set takes about a minute and
~1.5 GB of memory on one core. See docs/datasets.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vae_gjs.data import dsprites as D

#: Statistics of the real images published with disent (N. Michlo, ``compute_data_mean_std``):
#: the mean pixel value, and the mean over images of each image's pixel standard deviation.
REAL_MEAN_INTENSITY = 0.042494423521889584
REAL_MEAN_IMAGE_STD = 0.19516645880626055

_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)


def image_statistics(packed: np.ndarray, classes: np.ndarray, chunk: int = 16384) -> dict[str, Any]:
    """Areas and centroids of binary images, aggregated per factor value.

    Returns ``mean_intensity`` (mean pixel value), ``mean_image_std`` (mean over images of each
    image's pixel std, ddof=1: disent's statistic), ``area[shape][scale]`` (mean pixels),
    ``area_std[shape][scale]``, ``centroid_x[posX]`` / ``centroid_y[posY]`` (mean centre of mass,
    in pixels from the left/top edge, pixel i covering [i, i+1)), ``extent[shape][scale]`` (mean
    of the larger bounding-box side at orientation class 0), ``empty`` (images with no pixel) and
    ``distinct_images`` (the real file's orientations 0 and 2π coincide: 718,848 at most).
    """
    n = len(packed)
    area = np.empty(n)
    cx = np.full(n, np.nan)
    cy = np.full(n, np.nan)
    extent = np.full(n, np.nan)
    centre = np.arange(D.IMAGE_SIZE) + 0.5
    for start in range(0, n, chunk):
        images = D.unpack(packed[start : start + chunk])
        cols, rows = images.sum(1, dtype=np.int32), images.sum(2, dtype=np.int32)
        a = cols.sum(1)
        area[start : start + len(a)] = a
        with np.errstate(invalid="ignore", divide="ignore"):
            cx[start : start + len(a)] = cols @ centre / a
            cy[start : start + len(a)] = rows @ centre / a
        width = (cols > 0).sum(1)
        height = (rows > 0).sum(1)
        extent[start : start + len(a)] = np.maximum(width, height)
    p = area / (D.IMAGE_SIZE * D.IMAGE_SIZE)
    shape, scale, orientation = classes[:, 1], classes[:, 2], classes[:, 3]

    def grouped(
        values: np.ndarray, *keys: np.ndarray, where: np.ndarray | None = None, std: bool = False
    ) -> dict:
        """Mean (or std) of ``values`` per distinct tuple of ``keys``, as nested dicts."""
        keep = ~np.isnan(values) if where is None else where & ~np.isnan(values)
        groups, inverse = np.unique(np.stack([k[keep] for k in keys], axis=1), axis=0, return_inverse=True)
        inverse = inverse.ravel()
        count = np.bincount(inverse)
        mean = np.bincount(inverse, weights=values[keep]) / count
        if std:
            mean = np.sqrt(np.maximum(np.bincount(inverse, weights=values[keep] ** 2) / count - mean**2, 0))
        table: dict = {}
        for key, value in zip(groups.tolist(), mean.tolist(), strict=True):
            node = table
            for level in key[:-1]:
                node = node.setdefault(level, {})
            node[key[-1]] = value
        return table

    return {
        "n_images": n,
        "mean_intensity": float(p.mean()),
        "mean_image_std": float(np.sqrt(p * (1 - p) * 4096 / 4095).mean()),
        "empty": int((area == 0).sum()),
        "distinct_images": len({hash(row.tobytes()) for row in packed}),
        "area": grouped(area, shape, scale),
        "area_std": grouped(area, shape, scale, std=True),
        "extent_at_orientation_0": grouped(extent, shape, scale, where=orientation == 0),
        "centroid_x": grouped(cx, classes[:, 4]),
        "centroid_y": grouped(cy, classes[:, 5]),
    }


def agreement(a: np.ndarray, b: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Pixel agreement of two aligned bit-packed sets: mean IoU and mean differing pixels per shape."""
    both = _POPCOUNT[a & b].sum(1)
    either = _POPCOUNT[a | b].sum(1)
    differ = _POPCOUNT[a ^ b].sum(1)
    iou = np.where(either > 0, both / np.maximum(either, 1), 1.0)
    return {
        "mean_iou": {
            D.SHAPES[s]: float(iou[classes[:, 1] == s].mean()) for s in np.unique(classes[:, 1]).tolist()
        },
        "mean_differing_pixels": {
            D.SHAPES[s]: float(differ[classes[:, 1] == s].mean()) for s in np.unique(classes[:, 1]).tolist()
        },
        "identical_images": int((differ == 0).sum()),
    }


def _default_real() -> Path:
    return Path(os.environ.get("VAE_GJS_DATA_DIR") or "data") / D.FOLDER / D.FILENAME


def _subsample(classes: np.ndarray, every: int) -> np.ndarray:
    return np.flatnonzero((classes[:, 4] % every == 0) & (classes[:, 5] % every == 0))


def _row(label: str, real: float | None, ours: float, digits: int = 2) -> str:
    if real is None:
        return f"  {label:<34} {'-':>10} {ours:>10.{digits}f}"
    return f"  {label:<34} {real:>10.{digits}f} {ours:>10.{digits}f} {ours - real:>+10.{digits}f}"


def report(real: dict[str, Any] | None, ours: dict[str, Any], agreement: dict[str, Any] | None) -> str:
    lines = [f"  {'':<34} {'real':>10} {'procedural':>10} {'diff':>10}"]
    published = real is None
    ref = real or {"mean_intensity": REAL_MEAN_INTENSITY, "mean_image_std": REAL_MEAN_IMAGE_STD}
    tag = " (published)" if published else ""
    lines.append(_row(f"mean pixel value{tag}", ref["mean_intensity"], ours["mean_intensity"], 5))
    lines.append(_row(f"mean per-image std{tag}", ref["mean_image_std"], ours["mean_image_std"], 5))
    lines.append(
        _row("distinct images", None if real is None else real["distinct_images"], ours["distinct_images"], 0)
    )
    for key, title in (
        ("area", "mean area (px)"),
        ("extent_at_orientation_0", "bounding-box side at orientation 0"),
    ):
        lines.append(f" {title}")
        for shape, per_scale in ours[key].items():
            for scale, value in per_scale.items():
                other = None if real is None else real[key][shape][scale]
                label = f"{D.SHAPES[int(shape)]} scale {D.factor_values()['scale'][int(scale)]:.1f}"
                lines.append(_row(label, other, value, 1))
    for key, factor in (("centroid_x", "posX"), ("centroid_y", "posY")):
        values = np.array(list(ours[key].values()))
        name = key.replace("_", " ")
        line = f" mean {name} per {factor} (px): procedural {values.min():.2f}..{values.max():.2f}"
        if real is not None:
            reference = np.array(list(real[key].values()))
            diffs = values - reference
            line += (
                f", real {reference.min():.2f}..{reference.max():.2f}, "
                f"max |diff| {np.abs(diffs).max():.2f}, mean diff {diffs.mean():+.2f}"
            )
        lines.append(line)
    if agreement is not None:
        lines.append(" pixel agreement (same factors)")
        for shape, iou in agreement["mean_iou"].items():
            differing = agreement["mean_differing_pixels"][shape]
            lines.append(f"  {shape:<10} mean IoU {iou:.3f}, mean differing pixels {differing:.1f}")
        lines.append(f"  identical images: {agreement['identical_images']:,}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--real", type=Path, default=None, help="DeepMind's npz (default: the data folder's)")
    parser.add_argument(
        "--every", type=int, default=1, help="use every k-th posX and posY value (1/k² of the images)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full comparison here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    real_path = args.real or _default_real()
    renderer = D.SpriteRenderer()
    result: dict[str, Any] = {"renderer": renderer.meta()}
    if real_path.is_file():
        packed, classes = D.read_npz(real_path)
        rows = _subsample(classes, args.every)
        packed, classes = packed[rows], classes[rows]
        ours = renderer.render(D.selection_of(classes))
        result |= {
            "real_file": str(real_path),
            "real": image_statistics(packed, classes),
            "procedural": image_statistics(ours, classes),
            "agreement": agreement(packed, ours, classes),
        }
        print(f"dSprites: {len(classes):,} images of {real_path} against the renderer")
    else:
        if args.real is not None:
            print(f"no file {real_path}", file=sys.stderr)
            return 2
        sel = D.selection({"posX": range(0, 32, args.every), "posY": range(0, 32, args.every)})
        classes = D.grid_classes(sel)
        result |= {
            "real": None,
            "procedural": image_statistics(renderer.render(sel), classes),
            "agreement": None,
        }
        print(
            f"dSprites: no real file at {real_path}; "
            f"the renderer's {len(classes):,} images vs the published statistics"
        )
    print(report(result["real"], result["procedural"], result["agreement"]))
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
