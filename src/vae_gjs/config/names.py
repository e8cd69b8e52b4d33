"""The names a user can choose in a config, listed before anything heavy is imported; the packages
key their classes by them (``tests/test_config.py`` checks that they agree)."""

from __future__ import annotations

#: Decoder likelihoods (the classes: :data:`vae_gjs.models.likelihoods.LIKELIHOOD_CLASSES`).
LIKELIHOODS = ("gaussian", "bernoulli")
#: Reports that load the sweep's models (written by :mod:`vae_gjs.tasks.evaluate`).
MODEL_REPORTS = ("fig4",)
#: Reports drawn from the runs' training logs alone: nothing is evaluated, running runs included.
LOG_REPORTS = ("curves",)
#: Reports of a sweep (the writers of the others: :mod:`vae_gjs.reports.write`).
REPORTS = ("table1", "fig3", "fig5", "learned_alpha", "likelihood", *LOG_REPORTS, *MODEL_REPORTS)
#: The arithmetic of a run's network (:mod:`vae_gjs.models.precision`).
PRECISIONS = ("fp32", "bf16")
#: What train.py can return (``objective``): a final metric of the test or the validation split.
OBJECTIVES = ("test/rec", "test/loss", "val/rec", "val/loss")
#: Checkpoints and splits an evaluation can use.
CHECKPOINTS = ("best", "last")
SPLITS = ("test", "train", "val")

#: numpy's bound: ``np.random.seed`` (which Lightning seeds) takes 0 <= seed <= 2**32 - 1.
SEED_MAX = 2**32 - 1
#: ``logger.wandb.mode`` values; ``$WANDB_MODE`` may hold the last three (``dryrun`` is offline).
WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB_ENV_MODES = ("online", "offline", "disabled", "dryrun")

#: Defaults of conf/train.yaml (``seed``, ``optim.lr``) and conf/model/burgess.yaml
#: (``model.latent_dim``): a run name mentions these values only where they differ.
DEFAULT_SEED, DEFAULT_LATENT_DIM, DEFAULT_LR = 1234, 10, 1e-4
