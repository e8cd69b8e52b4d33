"""Hydra launcher plugin of vae-gjs: ``hydra/launcher=fused`` trains fusable sweep jobs as one model."""

from hydra_plugins.vae_gjs_fused_launcher.launcher import FusedLauncher

__all__ = ["FusedLauncher"]
