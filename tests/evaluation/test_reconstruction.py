"""Split averages with z = μ: every image counts once, the last partial batch by its size."""

from __future__ import annotations

import pytest
import torch

from vae_gjs.data import InMemoryBatches, Split, UInt8Images
from vae_gjs.divergences import build_divergence
from vae_gjs.evaluation.reconstruction import reconstruction_metrics
from vae_gjs.models import Burgess
from vae_gjs.module import VAE


def _module(divergence: str, likelihood: str = "gaussian") -> VAE:
    torch.manual_seed(0)
    kwargs = {"alpha": 0.3} if divergence in ("gjs", "dgjs") else {}
    return VAE(
        Burgess(1, 8, latent_dim=3), build_divergence(divergence, **kwargs), lam=2.0, likelihood=likelihood
    ).eval()


@pytest.mark.parametrize(
    ("divergence", "likelihood"), [("gjs", "gaussian"), ("dgjs", "bernoulli"), ("kl_qp", "gaussian")]
)
def test_ten_images_in_batches_of_four_average_like_one_batch(divergence: str, likelihood: str) -> None:
    module = _module(divergence, likelihood)
    pixels = torch.randint(
        0, 256, (10, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    split = Split(UInt8Images(pixels), torch.zeros(10, dtype=torch.long))
    result = reconstruction_metrics(module, InMemoryBatches(split, 4, shuffle=False))  # batches of 4, 4, 2

    x = pixels.float() / 255
    with torch.no_grad():
        mu, logvar = module.net.encode(x)
        logits = module.net.decode(mu)
        rec = module.likelihood.loss(logits, x)
        div, parts = module.divergence.value_and_parts(mu, logvar)
        kl_dims = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)  # Eq. 3 per dimension
        direct = {
            "sse": (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1),
            "rec": rec,
            "div": div,
            "loss": rec + 2.0 * div,
            "kl_qp": kl_dims.sum(1),
            **parts,
        }
        kl_per_dim = kl_dims.mean(0)

    assert result.n_images == 10
    expected_keys = {"sse", "rec", "div", "loss", "kl_qp"}
    expected_keys |= {"gjs": {"kl_q_m", "kl_p_m"}, "dgjs": {"kl_m_q", "kl_m_p"}}.get(divergence, set())
    assert set(result.means) == expected_keys
    for name, values in direct.items():
        assert result.means[name] == pytest.approx(float(values.double().mean()), rel=1e-6), name
    assert result.kl_per_dim == pytest.approx(kl_per_dim.tolist(), rel=1e-6)
    if likelihood == "gaussian":
        assert result.means["rec"] == pytest.approx(result.means["sse"])
    # counting the last batch of 2 as a full batch (a mean of the 3 batch means) would differ
    sse = direct["sse"].double()
    mean_of_batch_means = float(torch.stack([sse[:4].mean(), sse[4:8].mean(), sse[8:].mean()]).mean())
    assert abs(mean_of_batch_means - result.means["sse"]) > 1e-4 * result.means["sse"]


def test_no_batches_is_an_error() -> None:
    with pytest.raises(ValueError, match="no batches"):
        reconstruction_metrics(_module("kl_qp"), [])


def test_a_nan_image_makes_the_split_mean_nan() -> None:
    """Not dropped with a warning (torchmetrics' default): a NaN image's SSE would otherwise leave
    a mean over the other images that looks like a result."""
    from vae_gjs.evaluation.reconstruction import _mean_metric

    metric = _mean_metric(torch.device("cpu"))
    metric.update(torch.tensor([1.0, float("nan"), 3.0]))
    assert torch.isnan(metric.compute())
