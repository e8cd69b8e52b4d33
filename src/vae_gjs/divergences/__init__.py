"""Divergences between Gaussians and the VAE regularisers built on them.

Closed forms (usable on their own): :func:`kl_normal`, :func:`gjs_normal`, :func:`kl_mvn`,
:func:`gjs_mvn`. Regularisers of q(z|x) against N(0, I), each a ``torch.nn.Module`` mapping
``(mu, logvar) -> [B]``, and ``value_and_parts`` to the value with its named parts:
:class:`KLqp`, :class:`KLpq`, :class:`GJS`, :class:`DGJS`, :class:`MMD`, :class:`MMDReference`,
:class:`GJSReference`, :class:`DGJSReference` (the last three: as the paper's authors' code computed them),
also built by name with :func:`build_divergence`.
"""

from vae_gjs.divergences.base import Divergence, ValueAndParts, build_divergence
from vae_gjs.divergences.gaussian import (
    geometric_mean_mvn,
    geometric_mean_normal,
    gjs_mvn,
    gjs_normal,
    gjs_normal_terms,
    kl_mvn,
    kl_normal,
    kl_normal_dims,
)
from vae_gjs.divergences.gjs import DGJS, GJS, DGJSReference, GJSReference
from vae_gjs.divergences.kl import KLpq, KLqp
from vae_gjs.divergences.mmd import MMD, MMDReference, imq_kernel, mmd2, rbf_kernel

__all__ = [
    "DGJS",
    "GJS",
    "MMD",
    "DGJSReference",
    "Divergence",
    "GJSReference",
    "KLpq",
    "KLqp",
    "MMDReference",
    "ValueAndParts",
    "build_divergence",
    "geometric_mean_mvn",
    "geometric_mean_normal",
    "gjs_mvn",
    "gjs_normal",
    "gjs_normal_terms",
    "imq_kernel",
    "kl_mvn",
    "kl_normal",
    "kl_normal_dims",
    "mmd2",
    "rbf_kernel",
]
