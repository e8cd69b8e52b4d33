"""The convolutional encoder/decoder of Burgess et al. (2018), as used by Higgins et al. and the paper.

Encoder: ``n_conv`` convolutions (4×4, stride 2, padding 1, ``hidden_channels`` channels; 3 for
32×32 inputs, 4 for 64×64) down to 4×4, then FC 512 → 256 → 256 → 2·d (mean and log-variance).
Decoder: the mirror image with transposed convolutions; it returns logits (the likelihood
applies the sigmoid). All weights Kaiming-uniform, biases zero.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from vae_gjs.errors import ConfigError, check_positive_int

KERNEL, STRIDE, PADDING = 4, 2, 1
BOTTOM = 4  # spatial size after the convolutions


def conv_layers(image_size: int) -> int:
    """Number of stride-2 convolutions that take ``image_size`` down to 4×4 (3 for 32, 4 for 64)."""
    layers = math.log2(image_size / BOTTOM) if image_size >= BOTTOM else -1
    if layers < 1 or not layers.is_integer():
        raise ConfigError(
            f"image_size={image_size} is not supported; allowed: 4·2^k with k >= 1 (8, 16, 32, 64, ...)"
        )
    return int(layers)


def init_weights(module: nn.Module) -> None:
    """Kaiming-uniform weights (ReLU gain) and zero biases for every conv and linear layer."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class BurgessEncoder(nn.Module):
    """``x [B, C, H, W] -> (mu, logvar)``, each ``[B, latent_dim]``."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        latent_dim: int,
        hidden_channels: int = 32,
        hidden_dim: int = 256,
        logvar_bound: float | None = 20.0,
    ) -> None:
        super().__init__()
        n_conv = conv_layers(image_size)
        convs: list[nn.Module] = []
        channels = in_channels
        for _ in range(n_conv):
            convs += [nn.Conv2d(channels, hidden_channels, KERNEL, STRIDE, PADDING), nn.ReLU()]
            channels = hidden_channels
        self.convs = nn.Sequential(*convs, nn.Flatten())
        self.fc = nn.Sequential(
            nn.Linear(hidden_channels * BOTTOM * BOTTOM, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )
        self.logvar_bound = logvar_bound

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.fc(self.convs(x)).chunk(2, dim=-1)
        if self.logvar_bound is not None:
            # Soft bound: identity for |logvar| << bound, never beyond ±bound, so exp(±logvar)
            # and every divergence stay finite (gradients too) whatever the encoder outputs.
            logvar = self.logvar_bound * torch.tanh(logvar / self.logvar_bound)
        return mu, logvar


class BurgessDecoder(nn.Module):
    """``z [B, latent_dim] -> logits [B, C, H, W]``."""

    def __init__(
        self,
        out_channels: int,
        image_size: int,
        latent_dim: int,
        hidden_channels: int = 32,
        hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        n_conv = conv_layers(image_size)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_channels * BOTTOM * BOTTOM),
            nn.ReLU(),
            nn.Unflatten(1, (hidden_channels, BOTTOM, BOTTOM)),
        )
        deconvs: list[nn.Module] = []
        for layer in range(n_conv):
            last = layer == n_conv - 1
            deconvs.append(
                nn.ConvTranspose2d(
                    hidden_channels, out_channels if last else hidden_channels, KERNEL, STRIDE, PADDING
                )
            )
            if not last:
                deconvs.append(nn.ReLU())
        self.deconvs = nn.Sequential(*deconvs)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconvs(self.fc(z))


class Burgess(nn.Module):
    """The encoder/decoder pair: ``encode(x) -> (mu, logvar)``, ``decode(z) -> logits``."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        latent_dim: int = 10,
        hidden_channels: int = 32,
        hidden_dim: int = 256,
        logvar_bound: float | None = 20.0,
    ) -> None:
        super().__init__()
        self.latent_dim = check_positive_int("model.latent_dim", latent_dim)
        self.image_shape = (in_channels, image_size, image_size)
        self.encoder = BurgessEncoder(
            in_channels, image_size, latent_dim, hidden_channels, hidden_dim, logvar_bound
        )
        self.decoder = BurgessDecoder(in_channels, image_size, latent_dim, hidden_channels, hidden_dim)
        self.apply(init_weights)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)
