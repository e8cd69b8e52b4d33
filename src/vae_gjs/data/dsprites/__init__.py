"""dSprites (Matthey et al., 2017): 737,280 binary 64×64 images of a white 2D shape on black, every
combination of 6 factors exactly once, in DeepMind's order (posY varies fastest, then posX,
orientation, scale, shape; color has one value).

Two sources with the same layout and factors:

* ``real``: DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` in ``<root>/dsprites/``,
  downloaded where the internet exists and checked against its MD5, then bit-packed once into
  a checksummed cache next to it (``imgs`` inflates to 3 GB; it is streamed, never held whole).
* ``procedural``: :class:`SpriteRenderer`, a vectorised renderer of the same factor grid,
  deterministic, generated once and cached bit-packed in ``<root>/dsprites/``.

``source=auto`` (the default) uses the real file when it is there or can be downloaded and the
renderer otherwise, and says so in the log. In memory each image is a bit-packed 32×32 window
around the sprite plus the window's corner: 96 MB for the whole set (377 MB bit-packed whole,
3 GB as uint8), put back on the 64×64 canvas per batch (:class:`~vae_gjs.data.base.PackedBitImages`).
How the renderer was matched to the real images, and how closely: ``docs/datasets.md``.
"""

from vae_gjs.data.dsprites.datamodule import FOLDER, SOURCES, DSprites
from vae_gjs.data.dsprites.factors import (
    FACTORS,
    FULL,
    IMAGE_SIZE,
    N_IMAGES,
    PACKED_BYTES,
    SHAPES,
    SIZES,
    Selection,
    classes_to_values,
    factor_values,
    flat_indices,
    grid_classes,
    selection,
    selection_of,
)
from vae_gjs.data.dsprites.npz import (
    FILENAME,
    MD5,
    URL,
    bounding_boxes,
    read_classes,
    read_npz,
    read_npz_windows,
    to_windows,
    unpack,
    windows_from,
)
from vae_gjs.data.dsprites.renderer import SpriteRenderer, heart_mask, heart_radius

__all__ = [
    "FACTORS",
    "FILENAME",
    "FOLDER",
    "FULL",
    "IMAGE_SIZE",
    "MD5",
    "N_IMAGES",
    "PACKED_BYTES",
    "SHAPES",
    "SIZES",
    "SOURCES",
    "URL",
    "DSprites",
    "Selection",
    "SpriteRenderer",
    "bounding_boxes",
    "classes_to_values",
    "factor_values",
    "flat_indices",
    "grid_classes",
    "heart_mask",
    "heart_radius",
    "read_classes",
    "read_npz",
    "read_npz_windows",
    "selection",
    "selection_of",
    "to_windows",
    "unpack",
    "windows_from",
]
