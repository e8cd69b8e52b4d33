"""The Burgess et al. architecture and the decoder likelihoods."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae_gjs.errors import ConfigError
from vae_gjs.models import Bernoulli, Burgess, Gaussian, build_likelihood


@pytest.mark.parametrize(("size", "n_conv"), [(32, 3), (64, 4)])
def test_shapes_and_layers_follow_the_paper(size: int, n_conv: int) -> None:
    net = Burgess(in_channels=1, image_size=size, latent_dim=10)
    convs = [m for m in net.encoder.modules() if isinstance(m, nn.Conv2d)]
    deconvs = [m for m in net.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == len(deconvs) == n_conv
    assert all(
        c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs + deconvs
    )
    assert all(c.out_channels == 32 for c in convs)
    linears = [(m.in_features, m.out_features) for m in net.encoder.modules() if isinstance(m, nn.Linear)]
    assert linears == [(512, 256), (256, 256), (256, 20)]
    x = torch.rand(5, 1, size, size)
    mu, logvar = net.encode(x)
    assert mu.shape == logvar.shape == (5, 10)
    assert net.decode(mu).shape == (5, 1, size, size)


def test_weights_are_kaiming_uniform_and_biases_zero() -> None:
    torch.manual_seed(0)
    net = Burgess(in_channels=1, image_size=32)
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = nn.init._calculate_correct_fan(module.weight, "fan_in")
            bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
            w = module.weight.detach()
            assert w.abs().max() <= bound
            assert w.abs().max() > 0.9 * bound  # uniform fills its range
            assert torch.all(module.bias == 0)


def test_logvar_is_softly_bounded() -> None:
    net = Burgess(in_channels=1, image_size=32, logvar_bound=20.0)
    with torch.no_grad():
        net.encoder.fc[-1].bias.fill_(1e4)
    _, logvar = net.encode(torch.rand(2, 1, 32, 32))
    assert torch.all(logvar <= 20.0) and torch.all(logvar > 19.0)
    small = torch.tensor([0.5])
    assert torch.allclose(20.0 * torch.tanh(small / 20.0), small, rtol=1e-3)


@pytest.mark.parametrize("size", [28, 0, 48])
def test_unsupported_image_size_is_a_clear_error(size: int) -> None:
    with pytest.raises(ConfigError, match=f"image_size={size}"):
        Burgess(in_channels=1, image_size=size)


def test_gaussian_likelihood_is_the_per_image_sse_and_a_normal_density() -> None:
    torch.manual_seed(0)
    logits, x = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    sse = ((torch.sigmoid(logits) - x) ** 2).sum(dim=(1, 2, 3))
    assert torch.allclose(Gaussian().loss(logits, x), sse)
    density = torch.distributions.Normal(torch.sigmoid(logits), math.sqrt(0.5)).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(Gaussian().log_prob(logits, x), density, atol=1e-4)


def test_bernoulli_likelihood_is_the_summed_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, x = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum(dim=(1, 2, 3))
    assert torch.allclose(Bernoulli().loss(logits, x), bce, atol=1e-5)
    assert torch.allclose(Bernoulli().log_prob(logits, x), -bce, atol=1e-5)
    assert torch.isfinite(Bernoulli().loss(torch.full((1, 1, 2, 2), 200.0), torch.zeros(1, 1, 2, 2))).all()


def test_unknown_likelihood_names_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="allowed: bernoulli, gaussian"):
        build_likelihood("laplace")
