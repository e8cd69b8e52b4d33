"""Hydra sweeper plugin of vae-gjs (Hydra finds plugins only under the ``hydra_plugins`` package)."""

from hydra_plugins.vae_gjs_sweeper.sweeper import VaeGjsSweeper

__all__ = ["VaeGjsSweeper"]
