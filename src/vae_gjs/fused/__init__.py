"""Fused sweeps: train the runs of a sweep that differ only in their regulariser as one batched model.

:mod:`.stack` (N networks as stacked weights under ``torch.func.vmap``), :mod:`.rng` (each
member's own random stream), :mod:`.engine` (the training step, Adam, isolation), :mod:`.members`
(a member's run folder), :mod:`.group` (the flow), :mod:`.grouping` (which jobs fuse). The Hydra
launcher is ``hydra/launcher=fused`` (``hydra_plugins.vae_gjs_fused_launcher``); see docs/fused.md.
"""
