"""Low-dimensional studies of Section 3.1 (Figures 1 and 2 of Deasy et al., 2020).

Each figure is reproduced by one command::

    python -m vae_gjs.toy fig1 --out figures/
    python -m vae_gjs.toy fig2 --out figures/

:mod:`vae_gjs.toy.fig1` draws the univariate comparison (geometric mean distributions and the JS
and JS^{G0.5} integrands); :mod:`vae_gjs.toy.fig2` fits one diagonal Gaussian to samples from a
2-D mixture of Gaussians by stochastic optimisation of forward KL, reverse KL, JS and JS^{G0.5}.
Nothing heavy (torch, matplotlib) is imported by this package until a figure is built.
"""
