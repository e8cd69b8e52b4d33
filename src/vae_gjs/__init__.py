"""vae-gjs: variational autoencoders with controllable latent divergences (Deasy et al., 2020)."""

__version__ = "0.1.0"
