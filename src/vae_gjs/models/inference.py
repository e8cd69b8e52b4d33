"""Faster forms of a network's layers that compute the same function: for inference (the model
evidence decodes 1.28 million latent codes for the MNIST test set) and for the fused engine's
member-by-member training on a CPU (:mod:`vae_gjs.fused.stack`).

A transposed convolution with a 4×4 kernel, stride 2 and padding 1 computes each output pixel
``(2m + a, 2n + b)`` from the 2×2 input pixels ``m - 1 + a … m + a`` (rows) and
``n - 1 + b … n + b`` (columns), with the kernel taps ``(3, 1)`` for parity 0 and ``(2, 0)`` for
parity 1. So it equals one ordinary 2×2 convolution of the input padded by 1, with
``4·C_out`` output channels (one 2×2 sub-kernel per output parity), whose four parity planes are
then interleaved — the sub-pixel rewrite of a strided transposed convolution. Same products,
same number of them, summed in another order (equal to ~1e-6 relative in float32).

On a CPU the library's transposed convolution is slow when it has few output channels (the
decoder's last layer: 1 or 3 channels): measured on the project's 2-core AMD EPYC machine
(1 thread, batches of 256 codes), 106 µs an image against 34 µs rewritten, while for 32 output
channels the library's own kernel is the faster one (55 against 74 µs). :func:`inference_net`
therefore rewrites only the thin layers, makes every ReLU work in place, and runs the convolutions
on channels-last activations (oneDNN's native layout: no reorder of each output). The
importance-sampled log p(x) of 10,000 MNIST test images (K = 128, 512 codes a call) then takes
77 s on 2 threads against 198 s with ``net.decode`` (``python benchmarks/run.py --only eval``,
docs/performance.md). :func:`training_form` (:func:`rewrite_thin_deconvs` on a CPU) is what
training uses: the rewritten layer keeps the transposed convolution's own ``weight`` and
``bias`` (same names, same shapes, so a ``state_dict`` and ``functional_call`` see the original
layer) and derives the sub-kernels from them on every call, differentiably.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Parity -> kernel index used by window row (or column) 0 and 1 of the 2×2 sub-kernel.
TAPS = ((3, 1), (2, 0))
#: The kernel rows (or columns) of the sub-kernels, parity-major: index ``2·a + t`` is ``TAPS[a][t]``.
_TAP_INDEX = [tap for parity in TAPS for tap in parity]
#: Transposed convolutions with at most this many output channels are rewritten.
THIN = 4


def sub_pixel_kernel(weight: Tensor) -> Tensor:
    """The ``[4·C_out, C_in, 2, 2]`` kernel of the 2×2 convolution (output channel ``(a, b, c)``,
    parity-major) for a transposed convolution's ``weight [C_in, C_out, 4, 4]``; differentiable."""
    c_in, c_out = weight.shape[:2]
    taps = weight[:, :, _TAP_INDEX][:, :, :, _TAP_INDEX]  # [C_in, C_out, (a, t), (b, u)]
    taps = taps.reshape(c_in, c_out, 2, 2, 2, 2).permute(2, 4, 1, 0, 3, 5)  # [a, b, C_out, C_in, t, u]
    return taps.reshape(4 * c_out, c_in, 2, 2)


class SubPixelConvTranspose2d(nn.Module):
    """``nn.ConvTranspose2d(C_in, C_out, 4, stride=2, padding=1)`` as a 2×2 convolution with
    ``4·C_out`` channels and an interleave of the four parity planes (module docstring). Holds the
    layer's own ``weight`` and ``bias``, so it trains like the layer it replaces."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not rewritable(deconv):
            raise ValueError(f"{deconv} is not a 4x4, stride 2, padding 1 transposed convolution")
        self.out_channels = deconv.out_channels
        self.weight = deconv.weight
        self.bias = deconv.bias

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        c_out = self.out_channels
        bias = None if self.bias is None else self.bias.repeat(4)
        planes = F.conv2d(x, sub_pixel_kernel(self.weight), bias, padding=1)
        planes = planes.reshape(batch, 2, 2, c_out, height + 1, width + 1)
        out = x.new_empty(batch, c_out, height, 2, width, 2)
        for a in (0, 1):
            for b in (0, 1):  # slice writes: autograd carries them (CopySlices), one pass over the output
                out[:, :, :, a, :, b] = planes[:, a, b, :, a : a + height, b : b + width]
        return out.view(batch, c_out, 2 * height, 2 * width)


def rewritable(module: nn.Module) -> bool:
    """Whether ``module`` is a transposed convolution the sub-pixel rewrite reproduces."""
    return (
        isinstance(module, nn.ConvTranspose2d)
        and module.kernel_size == (4, 4)
        and module.stride == (2, 2)
        and module.padding == (1, 1)
        and module.output_padding == (0, 0)
        and module.dilation == (1, 1)
        and module.groups == 1
    )


class ChannelsLast(nn.Module):
    """``module`` applied to its input in the channels-last memory format (same values)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x.contiguous(memory_format=torch.channels_last))


def _replace_layers(
    net: nn.Module, chosen: Callable[[nn.Module], bool], replacement: Callable[[Any], nn.Module]
) -> nn.Module:
    """Replace, in place, every submodule of ``net`` that is ``chosen`` by its ``replacement``
    (not looking inside a chosen one); returns ``net``."""
    for name, child in net.named_children():
        if chosen(child):
            setattr(net, name, replacement(child))
        else:
            _replace_layers(child, chosen, replacement)
    return net


def rewrite_thin_deconvs(net: nn.Module) -> nn.Module:
    """Replace, in place, every thin (≤ ``THIN`` output channels) 4×4 stride-2 transposed
    convolution of ``net`` by its :class:`SubPixelConvTranspose2d` (same parameters); returns ``net``."""
    return _replace_layers(net, lambda m: rewritable(m) and m.out_channels <= THIN, SubPixelConvTranspose2d)


class BiasAfterConvTranspose2d(nn.Module):
    """``nn.ConvTranspose2d`` computed without its bias, the bias added to its output: the same
    function, and the same ``weight`` and ``bias`` (so it trains like the layer it replaces).

    For bfloat16 training on a CPU. oneDNN's bf16 transposed convolution sums its bias gradient
    slowly: the backward of the decoder's 32→32-channel 8×8 → 16×16 layer (batch 64, 1 thread, the
    project's AMD EPYC with ``avx512_bf16``) took 3.29 ms with the bias and 1.55 ms without it,
    while autograd's sum of the same gradient over batch and pixels takes 0.03 ms (float32: 2.83
    against 2.31 ms). Apart, the bias costs one addition in the forward and one sum in the backward
    (docs/performance.md)."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if deconv.bias is None:
            raise ValueError(f"{deconv} has no bias to move out")
        self.stride, self.padding, self.dilation = deconv.stride, deconv.padding, deconv.dilation
        self.output_padding, self.groups = deconv.output_padding, deconv.groups
        self.weight = deconv.weight
        self.bias = deconv.bias

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(
            x, self.weight, None, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )
        return out.add_(self.bias.to(out.dtype).view(-1, 1, 1))


def bias_after_deconvs(net: nn.Module) -> nn.Module:
    """Replace, in place, every ``nn.ConvTranspose2d`` with a bias of ``net`` by its
    :class:`BiasAfterConvTranspose2d` (same parameters); returns ``net``."""
    return _replace_layers(
        net, lambda m: isinstance(m, nn.ConvTranspose2d) and m.bias is not None, BiasAfterConvTranspose2d
    )


#: The layers :func:`channels_last` feeds channels-last activations.
CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d, SubPixelConvTranspose2d, BiasAfterConvTranspose2d)


def _channels_last_input(module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return (inputs[0].contiguous(memory_format=torch.channels_last), *inputs[1:])


def channels_last(net: nn.Module) -> nn.Module:
    """``net``, in place, in the channels-last layout (oneDNN's native one, where NCHW tensors
    are reordered on every call): its 4-d weights stored channels-last (the same ``Parameter``
    objects, the same values) and every convolution fed channels-last activations (a forward
    pre-hook, also for weights given by ``functional_call``). Returns ``net``."""
    net.to(memory_format=torch.channels_last)
    for module in net.modules():
        if isinstance(module, CONVOLUTIONS) and not getattr(module, "_channels_last_input", False):
            module.register_forward_pre_hook(_channels_last_input)
            module._channels_last_input = True
    return net


def training_form(net: nn.Module, device: torch.device, precision: str = "fp32") -> nn.Module:
    """``net``, in place, in the form a run trains it in on ``device`` and in ``precision``: on a
    CPU its thin transposed convolutions in their sub-pixel form (:func:`rewrite_thin_deconvs`:
    the same parameters, ``state_dict`` and function, faster there), and in ``bf16`` there also
    :func:`bias_after_deconvs` and :func:`channels_last` (a bf16 step 1.13x faster with the
    layout on the Intel machine, 1.13x with the bias apart on the AMD one: docs/performance.md;
    float32 keeps its layers and layout, so that its runs stay bit for bit those of earlier
    versions); elsewhere as built."""
    if device.type != "cpu":
        return net
    rewrite_thin_deconvs(net)
    return channels_last(bias_after_deconvs(net)) if precision == "bf16" else net


def _channels_last_and_in_place(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, CONVOLUTIONS):
            setattr(module, name, ChannelsLast(child))
        elif isinstance(child, nn.ReLU):
            setattr(module, name, nn.ReLU(inplace=True))
        else:
            _channels_last_and_in_place(child)


def inference_net(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose thin stride-2 transposed convolutions are rewritten
    (:class:`SubPixelConvTranspose2d`), whose convolutions see channels-last inputs and whose
    ReLUs work in place: the same ``encode``/``decode``, faster, for inference only (under
    ``torch.inference_mode``; in-place ReLUs and frozen weights leave nothing to train)."""
    fast = rewrite_thin_deconvs(copy.deepcopy(net).eval())
    _channels_last_and_in_place(fast)
    return fast.requires_grad_(False)
