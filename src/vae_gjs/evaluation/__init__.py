"""Evaluation of trained runs: reconstruction on z = μ, importance-sampled log p(x) with bootstrap
intervals, image grids and latent traversals (``evaluate.py``); :mod:`.runner` puts them
together into a run's eval.json. The options are validated by :mod:`vae_gjs.config` before
torch loads."""
