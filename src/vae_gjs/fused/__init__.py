"""Fused sweeps: train the runs of a sweep that differ only in their regulariser as one batched model.

A file per part: :mod:`.plan` (which jobs fuse, in which groups, on how many workers),
:mod:`.sweep` (the launcher's work: set up, plan and run a sweep's jobs), :mod:`.group` (the
group's training: a member's lifecycle as a separate run's), :mod:`.engine` (the stacked step and
test), :mod:`.optimiser` (the members' optimiser), :mod:`.stack` (N networks as stacked weights
under ``torch.func.vmap``), :mod:`.rng` (each member's own random stream), :mod:`.checkpoint` (the
checkpoint format a member shares with a separate run), :mod:`.members` (a member's run folder
and loggers). The Hydra launcher is ``hydra/launcher=fused``
(``hydra_plugins.vae_gjs_fused_launcher``); see docs/fused.md.
"""
