"""The configuration's one home before anything heavy is imported (no torch, no Lightning: so
``--help`` and bad values answer at once), by concern:

* :mod:`.names`: the names a user can choose (likelihoods, reports, precisions, ...);
* :mod:`.keys`: every list of the config's keys (what a resume may change, what fused members may
  differ in, which evaluation options change its numbers, ...);
* :mod:`.resolvers`: the ``vae_gjs.*`` resolvers of ``conf/``;
* :mod:`.validation`: train.py's config (and the fused launcher's options); :mod:`.evaluate`:
  evaluate.py's and the shared evaluation options;
* :mod:`.runtime`: what a running task asks of its config (the recorded config, the loggers'
  hyperparameters, the batches of an epoch).

The names below are the package's face; code inside ``vae_gjs`` imports from the module that
owns a name.
"""

from __future__ import annotations

from vae_gjs.config.evaluate import evidence_likelihoods, validate_eval_options, validate_evaluate
from vae_gjs.config.names import (
    CHECKPOINTS,
    DEFAULT_LATENT_DIM,
    DEFAULT_LR,
    DEFAULT_SEED,
    LIKELIHOODS,
    LOG_REPORTS,
    MODEL_REPORTS,
    OBJECTIVES,
    PRECISIONS,
    REPORTS,
    SEED_MAX,
    SPLITS,
)
from vae_gjs.config.resolvers import group_name, monitor, register_resolvers, run_name, sweep_subdir
from vae_gjs.config.runtime import limited_batches, logged_hyperparameters, recorded_config
from vae_gjs.config.validation import (
    alpha_sweeps_without_skew,
    check_nested_keys,
    check_override_keys,
    unused_alpha,
    validate,
    validate_fused_launcher,
)

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_LATENT_DIM",
    "DEFAULT_LR",
    "DEFAULT_SEED",
    "LIKELIHOODS",
    "LOG_REPORTS",
    "MODEL_REPORTS",
    "OBJECTIVES",
    "PRECISIONS",
    "REPORTS",
    "SEED_MAX",
    "SPLITS",
    "alpha_sweeps_without_skew",
    "check_nested_keys",
    "check_override_keys",
    "evidence_likelihoods",
    "group_name",
    "limited_batches",
    "logged_hyperparameters",
    "monitor",
    "recorded_config",
    "register_resolvers",
    "run_name",
    "sweep_subdir",
    "unused_alpha",
    "validate",
    "validate_eval_options",
    "validate_evaluate",
    "validate_fused_launcher",
]
