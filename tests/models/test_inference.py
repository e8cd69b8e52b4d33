"""The inference decoder computes the same function as ``net.decode``: the sub-pixel rewrite of a
stride-2 transposed convolution against the library's own, and whole decoders against theirs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vae_gjs.evaluation.evidence import importance_log_px_by_likelihood
from vae_gjs.models import Bernoulli, Burgess, Gaussian, inference_net, training_form
from vae_gjs.models.inference import ChannelsLast, SubPixelConvTranspose2d, rewrite_thin_deconvs


@pytest.mark.parametrize(
    ("c_in", "c_out", "size", "bias"), [(32, 1, 16, True), (3, 5, 7, True), (8, 3, 1, False)]
)
def test_sub_pixel_rewrite_equals_the_transposed_convolution(
    c_in: int, c_out: int, size: int, bias: bool
) -> None:
    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)
    x = torch.randn(6, c_in, size, size + 2)  # not square: rows and columns are not mixed up
    expected = deconv(x)
    got = SubPixelConvTranspose2d(deconv)(x)
    assert got.shape == expected.shape == (6, c_out, 2 * size, 2 * size + 4)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    cl = x.contiguous(memory_format=torch.channels_last)  # the layout the inference decoder feeds it
    torch.testing.assert_close(SubPixelConvTranspose2d(deconv)(cl), expected, rtol=1e-5, atol=1e-5)


def test_the_rewrite_trains_like_the_transposed_convolution() -> None:
    """Same parameters (the layer's own), same gradients for input, weight and bias."""
    torch.manual_seed(2)
    deconv = nn.ConvTranspose2d(32, 3, 4, stride=2, padding=1)
    rewritten = SubPixelConvTranspose2d(deconv)
    assert rewritten.weight is deconv.weight and rewritten.bias is deconv.bias
    x = torch.randn(5, 32, 6, 7, requires_grad=True)
    upstream = torch.randn(5, 3, 12, 14)
    grads = []
    for layer in (deconv, rewritten):
        grads.append(torch.autograd.grad(layer(x), (x, deconv.weight, deconv.bias), upstream))
    for ours, theirs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_rewrite_thin_deconvs_keeps_the_networks_parameters() -> None:
    torch.manual_seed(3)
    net = Burgess(1, 32)
    keys = list(net.state_dict())
    z = torch.randn(7, 10)
    expected = net.decode(z)
    assert rewrite_thin_deconvs(net) is net
    assert list(net.state_dict()) == keys  # a checkpoint loads into either
    (rewritten,) = [m for m in net.modules() if isinstance(m, SubPixelConvTranspose2d)]
    assert rewritten.out_channels == 1
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in net.modules()) == 2  # the 32-channel ones stay
    torch.testing.assert_close(net.decode(z), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("device", "sub_pixel_layers"), [("cpu", 1), ("cuda", 0), ("meta", 0)])
def test_training_form_rewrites_the_thin_layer_on_a_cpu_only(device: str, sub_pixel_layers: int) -> None:
    """The one place that decides a run's (and a fused member's) training form; nothing is moved."""
    net = Burgess(1, 32)
    assert training_form(net, torch.device(device)) is net
    assert sum(isinstance(m, SubPixelConvTranspose2d) for m in net.modules()) == sub_pixel_layers
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in net.modules()) == 3 - sub_pixel_layers
    assert {p.device.type for p in net.parameters()} == {"cpu"}


def test_other_transposed_convolutions_are_refused() -> None:
    with pytest.raises(ValueError, match="is not a 4x4, stride 2, padding 1 transposed convolution"):
        SubPixelConvTranspose2d(nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1))


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 64)])
def test_inference_net_is_net(channels: int, size: int) -> None:
    torch.manual_seed(1)
    net = Burgess(channels, size).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = inference_net(net)
    x, z = torch.rand(40, channels, size, size), 3 * torch.randn(40, 10)
    with torch.inference_mode():
        expected, got = net.decode(z), fast.decode(z)
        for ours, theirs in zip(fast.encode(x), net.encode(x), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # Only the thin last layer is rewritten; every convolution sees channels-last inputs.
    rewritten = [m for m in fast.modules() if isinstance(m, SubPixelConvTranspose2d)]
    assert len(rewritten) == 1 and rewritten[0].out_channels == channels
    convs = [m for m in fast.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    wrapped = [m.module for m in fast.modules() if isinstance(m, ChannelsLast)]
    assert len(wrapped) == len(convs) + 1 and all(any(c is w for w in wrapped) for c in convs)
    assert all(m.inplace for m in fast.modules() if isinstance(m, nn.ReLU))
    # The network itself is untouched.
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    assert not any(isinstance(m, (SubPixelConvTranspose2d, ChannelsLast)) for m in net.modules())
    assert not any(m.inplace for m in net.modules() if isinstance(m, nn.ReLU))


def test_log_px_with_the_inference_net_is_the_same_estimate() -> None:
    """Same samples, same likelihoods: the estimates agree to float32 rounding, far inside the
    Monte Carlo error of K = 64 samples."""
    torch.manual_seed(2)
    net = Burgess(1, 32).eval()
    x = torch.rand(20, 1, 32, 32)
    likelihoods = {"gaussian": Gaussian().log_prob, "bernoulli": Bernoulli().log_prob}
    with torch.inference_mode():
        slow = importance_log_px_by_likelihood(
            x, net.encode, net.decode, likelihoods, 64, torch.Generator().manual_seed(3), max_decode=1024
        )
        fast = importance_log_px_by_likelihood(
            x, net.encode, inference_net(net).decode, likelihoods, 64, torch.Generator().manual_seed(3)
        )
    for name in likelihoods:
        torch.testing.assert_close(fast[name].log_px, slow[name].log_px, rtol=1e-5, atol=1e-3)
        torch.testing.assert_close(fast[name].elbo, slow[name].elbo, rtol=1e-5, atol=1e-3)
