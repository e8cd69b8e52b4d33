"""A trained model to explore in Python: ``run = vae_gjs.open_run(run_dir)`` rebuilds a run folder's
VAE and the data split it was trained and tested on, and answers with tensors ready to plot.

Every method runs without gradients, in evaluation mode, on the CPU by default, in float32; images
are ``[..., C, H, W]`` tensors in [0, 1] (decoder means), latent codes ``[..., d]``::

    run = vae_gjs.open_run("outputs/mnist-gjs-a0.5/2026-01-01_12-00-00")
    x = run.images("test", 8)                # the run's own test split: [8, 1, 32, 32]
    run.reconstruct(x)                       # decoded from z = μ: [8, 1, 32, 32]
    run.sample(16, seed=0)                   # decoded from z ~ N(0, I): [16, 1, 32, 32]
    run.traverse(x[0], dims=[3, 7])          # z_d swept over [-3, 3]: [2, 10, 1, 32, 32]
    run.interpolate(x[0], x[1], steps=8)     # μ_a -> μ_b: [8, 1, 32, 32]
    run.log_px(x, k=128)                     # importance-sampled log p(x) per image: [8]
    plt.imshow(run.grid(run.traverse(x[0]))) # any of these as one picture [H, W, 3]

The numbers are those of ``evaluate.py`` (the same model, likelihood and estimator,
:mod:`.evidence`), image by image instead of averaged over a split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from vae_gjs.config.names import SPLITS
from vae_gjs.data import InMemoryDataModule
from vae_gjs.data.base import Split
from vae_gjs.datadir import default_data_dir
from vae_gjs.errors import ConfigError, check_choice, check_positive_int
from vae_gjs.evaluation.evidence import importance_log_px
from vae_gjs.evaluation.images import COLUMNS, grid, traversal_values
from vae_gjs.evaluation.loading import build_datamodule, load_trained
from vae_gjs.hardware import choose_device
from vae_gjs.models import build_likelihood
from vae_gjs.module import VAE

#: Images per forward pass: bounds memory on whole splits (the evaluation's batch size).
CHUNK = 500


class TrainedRun:
    """A run folder's trained VAE with its data; see the module docstring. Build it with
    :func:`open_run`."""

    def __init__(self, path: Path, model: VAE, config: DictConfig, data_dir: str) -> None:
        self.path = path
        #: The VAE (evaluation mode, gradients off): ``model.encode``, ``model.decode``, ...
        self.model = model
        #: The run's resolved config (its config.yaml).
        self.config = config
        self.data_dir = data_dir
        self.likelihood = build_likelihood(config.likelihood)

    @property
    def latent_dim(self) -> int:
        return int(self.model.net.latent_dim)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @cached_property
    def data(self) -> InMemoryDataModule:
        """The run's DataModule, loaded on first use: the same splits as training (a validation
        split held out with the run's ``dataset.val_size`` and ``split_seed``)."""
        return build_datamodule(self.config, self.data_dir)

    def _split(self, split: str) -> Split:
        check_choice("split", split, SPLITS)
        if split not in self.data.splits:
            allowed = ", ".join(sorted(self.data.splits))
            raise ConfigError(
                f"split={split!r} is not a split of this run (dataset.val_size=0?); allowed: {allowed}"
            )
        return self.data.splits[split]

    @staticmethod
    def _indices(which: int | Sequence[int] | Tensor | None, count: int) -> Tensor:
        if which is None or isinstance(which, int):
            return torch.arange(count if which is None else min(which, count))
        return torch.as_tensor(which).long()

    def images(self, split: str = "test", which: int | Sequence[int] | Tensor | None = None) -> Tensor:
        """Images of the run's ``split`` (``train``, ``val`` or ``test``) in [0, 1]: the first
        ``which`` if it is a number, the ones at the indices ``which``, or all if ``None``."""
        source = self._split(split).images
        return source.batch(self._indices(which, len(source))).float()

    def targets(self, split: str = "test", which: int | Sequence[int] | Tensor | None = None) -> Tensor:
        """The targets (class labels, factor indices, model ids) of the same images as :meth:`images`."""
        targets = self._split(split).targets
        return targets[self._indices(which, len(targets))].clone()

    def _apply(self, fn: Callable[[Tensor], Tensor | tuple[Tensor, ...]], x: Tensor) -> Tensor | tuple:
        """``fn`` over ``x`` in chunks of :data:`CHUNK` on the model's device, without gradients;
        results concatenated on the CPU."""
        outputs = []
        with torch.no_grad():
            for chunk in torch.split(x, CHUNK):
                out = fn(chunk.to(self.device, torch.float32))
                outputs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
        if isinstance(outputs[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))
        return torch.cat(outputs)

    @staticmethod
    def _batch(x: Tensor) -> Tensor:
        """``x`` as a batch: one image ``[C, H, W]`` becomes ``[1, C, H, W]``."""
        return x.unsqueeze(0) if x.dim() == 3 else x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ and log σ² ``[B, d]`` of q(z|x) for images ``x [B, C, H, W]``."""
        mu, logvar = self._apply(self.model.encode, self._batch(x))
        return mu, logvar

    def decode(self, z: Tensor) -> Tensor:
        """Decoder means ``[..., C, H, W]`` of latent codes ``z [..., d]``."""
        images = self._apply(self.model.decode, z.reshape(-1, self.latent_dim))
        return images.reshape(*z.shape[:-1], *images.shape[1:])

    def reconstruct(self, x: Tensor) -> Tensor:
        """Reconstructions of ``x``: decoded from z = μ (as Table 1's reconstruction error)."""
        return self._apply(lambda chunk: self.model.decode(self.model.encode(chunk)[0]), self._batch(x))

    def sample(self, n: int, seed: int | None = 0) -> Tensor:
        """``n`` images decoded from z ~ N(0, I) (the same ones for the same ``seed``; ``None``:
        torch's global generator)."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        z = torch.randn((check_positive_int("n", n), self.latent_dim), generator=generator)
        return self.decode(z)

    def kl_per_dim(self, x: Tensor) -> Tensor:
        """KL(q(z_d|x) ‖ N(0, 1)) of each latent dimension ``[d]``, averaged over the images ``x``:
        which dimensions the model uses (traverse those)."""
        mu, logvar = self.encode(x)
        return (0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)).mean(0)

    def traverse(
        self, x: Tensor, dims: Sequence[int] | None = None, steps: int = COLUMNS, extent: float = 3.0
    ) -> Tensor:
        """Latent traversals of one image ``x``: in row r, z at the image's μ with dimension
        ``dims[r]`` set to ``steps`` equidistant values in [-extent, extent]; ``[len(dims), steps,
        C, H, W]``. ``dims`` default: every dimension, most used first (:meth:`kl_per_dim` of the
        first 500 test images)."""
        if dims is None:
            dims = self.kl_per_dim(self.images("test", CHUNK)).argsort(descending=True).tolist()
        for dim in dims:
            if not 0 <= dim < self.latent_dim:
                raise ConfigError(
                    f"dims: {dim} is not a latent dimension; allowed: 0 to {self.latent_dim - 1}"
                )
        mu, _ = self.encode(self._batch(x)[:1])
        z = mu.repeat(len(dims), steps, 1)
        for row, dim in enumerate(dims):
            z[row, :, dim] = traversal_values(steps, extent)
        return self.decode(z)

    def interpolate(self, a: Tensor, b: Tensor, steps: int = COLUMNS) -> Tensor:
        """Images decoded along the straight line from the μ of image ``a`` to that of image ``b``
        (both ends included): ``[steps, C, H, W]``."""
        (mu_a, mu_b), _ = self.encode(torch.stack([self._batch(a)[0], self._batch(b)[0]]))
        weights = torch.linspace(0, 1, check_positive_int("steps", steps)).unsqueeze(1)
        return self.decode((1 - weights) * mu_a + weights * mu_b)

    def log_px(self, x: Tensor, k: int = 128, seed: int = 0) -> Tensor:
        """log p(x) of each image ``[B]`` (float64), importance-sampled with ``k`` samples of
        q(z|x) under the run's decoder likelihood, as ``evaluate.py`` estimates it."""
        generator = torch.Generator().manual_seed(seed)

        def estimate(chunk: Tensor) -> Tensor:
            return importance_log_px(
                chunk, self.model.encode, self.model.decode_logits, self.likelihood.log_prob, k, generator
            ).log_px

        return self._apply(estimate, self._batch(x))

    @staticmethod
    def grid(images: Tensor, columns: int | None = None) -> Tensor:
        """Images ``[..., C, H, W]`` as one picture ``[H', W', 3]`` in [0, 1] for ``plt.imshow``:
        one row per leading index of a ``[rows, columns, C, H, W]`` tensor (traversals), else
        ``columns`` images a row (default 10)."""
        if images.dim() == 5:
            columns = images.shape[1]
        flat = images.reshape(-1, *images.shape[-3:])
        return grid(flat, columns or COLUMNS).permute(1, 2, 0)


def open_run(
    run_dir: str | Path,
    checkpoint: str = "last",
    data_dir: str | None = None,
    device: str = "cpu",
) -> TrainedRun:
    """The trained model of the run folder ``run_dir`` with its data, to explore (the module
    docstring): weights of its ``last`` or ``best`` checkpoint, data from ``data_dir`` (default:
    as ``evaluate.py``, ``$VAE_GJS_DATA_DIR`` or ``./data`` or ``shared/data`` beside the clone),
    on ``device`` (``cpu``, ``cuda``, ``auto``). Loading the data waits until it is first used."""
    run, config, model = load_trained(run_dir, checkpoint)
    model.precision = "fp32"  # whatever the training's arithmetic: float32 everywhere here
    return TrainedRun(
        run.path, model.to(choose_device("device", device)), config, data_dir or default_data_dir()
    )
