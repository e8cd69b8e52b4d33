"""Reconstruction error and divergence terms on a whole split, decoding z = μ (no sampling).

The paper's protocol (Fig. 3, Table 1): "evaluation (sampling the mean with no variance) on the
training or test sets". The per-image values are the model's own (:meth:`VAE.per_image_terms`,
as in validation and test) plus the SSE; every number is a mean over *images*, accumulated with
torchmetrics ``MeanMetric`` in float64, so a last, partial batch counts by its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from vae_gjs.models import sse
from vae_gjs.module import VAE


@dataclass(frozen=True)
class ReconstructionResult:
    """Per-image means over a split and the mean KL(q‖p) of each latent dimension.

    ``means`` keys: ``sse`` (sum of squared errors of sigmoid(logits) per image, Table 1's
    metric), ``rec`` (the run's reconstruction loss; equal to ``sse`` for the Gaussian
    likelihood, BCE for Bernoulli), ``div`` (the run's divergence), ``loss`` (rec + λ·div),
    ``kl_qp`` (KL(q‖p) for every divergence) and the divergence's own parts (for gjs
    ``kl_q_m``/``kl_p_m``, for dgjs ``kl_m_q``/``kl_m_p``).
    """

    means: dict[str, float]
    n_images: int
    kl_per_dim: list[float]


def _mean_metric(device: torch.device) -> MeanMetric:
    """A float64 mean that keeps a NaN image (the mean is NaN) instead of dropping it with a warning."""
    return MeanMetric(nan_strategy="disable").set_dtype(torch.float64).to(device)


@torch.inference_mode()
def reconstruction_metrics(
    module: VAE,
    batches: Iterable[tuple[Tensor, Tensor]],
    device: torch.device | str = "cpu",
    progress: Callable[[Iterable[Any], int | None], Iterable[Any]] = lambda it, total: it,
    total: int | None = None,
) -> ReconstructionResult:
    """Average reconstruction and divergence terms of ``module`` over every image of ``batches``."""
    device = torch.device(device)
    metrics: dict[str, MeanMetric] = {}
    kl_sum: Tensor | None = None  # per-dimension sum of KL(q‖p) over images, float64
    n_images = 0
    for x, _ in progress(batches, total):
        x = x.to(device)
        terms = module.per_image_terms(x, sample=False)
        for name, value in {"sse": sse(terms.logits, x), **terms.metrics()}.items():
            if name not in metrics:
                metrics[name] = _mean_metric(device)
            metrics[name].update(value.double().expand(x.shape[0]))
        per_dim = terms.kl_qp_dims().double().sum(0)
        kl_sum = per_dim if kl_sum is None else kl_sum + per_dim
        n_images += x.shape[0]
    if kl_sum is None:
        raise ValueError("reconstruction_metrics got no batches")
    return ReconstructionResult(
        means={name: float(metric.compute()) for name, metric in metrics.items()},
        n_images=n_images,
        kl_per_dim=[float(v) for v in kl_sum / n_images],
    )
