"""Evaluation of trained runs: reconstruction on z = μ, importance-sampled log p(x) with bootstrap
intervals, image grids and latent traversals (``evaluate.py``).

Kept free of heavy imports: :mod:`vae_gjs.evaluation.options` validates before torch loads.
"""
