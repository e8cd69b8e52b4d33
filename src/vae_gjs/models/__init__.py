"""Encoder/decoder architectures and decoder likelihoods (independent of the divergence)."""

from vae_gjs.models.burgess import Burgess, BurgessDecoder, BurgessEncoder
from vae_gjs.models.inference import inference_net, training_form
from vae_gjs.models.likelihoods import Bernoulli, Gaussian, Likelihood, build_likelihood, sse

__all__ = [
    "Bernoulli",
    "Burgess",
    "BurgessDecoder",
    "BurgessEncoder",
    "Gaussian",
    "Likelihood",
    "build_likelihood",
    "inference_net",
    "sse",
    "training_form",
]
