"""The config's keys, listed in one place: every list of keys of ``conf/train.yaml`` (or of
``conf/eval/default.yaml``) that code decides by lives here. Adding a key to ``conf/`` means
deciding, here, whether a resumed run may change it and whether fused members may differ in it;
``tests/test_config_keys.py`` composes the configs and fails when a listed key does not exist
or when a key is in no list that needs it.

A key stands for itself and everything below it (``dataset`` covers ``dataset.batch_size``); a
more specific entry wins (``dataset.root`` may change on resume although ``dataset`` may not).
"""

from __future__ import annotations

from typing import Any

# --------------------------------------------------------------------------- resuming a run

#: Keys that a resumed run may change: how long, how fast, what is logged or evaluated, where
#: the data lies, and what only names the run (:mod:`vae_gjs.resume`).
MAY_CHANGE = (
    "threads",
    "compile",
    "ckpt_path",
    "test",
    "objective",
    "evaluate",
    "eval",
    "logger",
    "checkpoint_artifacts",
    "callbacks",
    "images_every_n_epochs",
    "log_every_n_steps",
    "data_dir",
    "dataset.root",
    "dataset.download",
    "dataset.eval_batch_size",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "run_dir",
    "run_name",
    "group",
    "tags",
    "choices.budget",
)
#: Keys a resumed run must keep (what decides its weights, its batches and its record): a
#: difference in any of them is refused.
MUST_KEEP = (
    "config_version",
    "alpha",
    "learn_alpha",
    "lam",
    "seed",
    "likelihood",
    "optim",
    "precision",
    "debug_run",
    "choices",
    "dataset",
    "divergence",
    "model",
    "module",
    "trainer",
)
#: The keys that say how long a run trains (a completed run is trained on only with more).
LENGTH = ("trainer.max_epochs", "trainer.max_steps")
#: Keys (with everything below them) that conf/ gained after its first version (b28a424): a run
#: folder written before may lack them. ``choices`` (93a4590), ``module`` (c3212fb: the model as
#: one instantiate), ``debug_run`` (c17600e), ``learn_alpha`` and ``optim.alpha_lr`` (a951fdf),
#: ``precision`` (b5169b8), ``config_version`` (absent from the very first config),
#: ``divergence.learn_alpha`` (a951fdf, with ``learn_alpha``), ``divergence.prime`` (its default,
#: the paper's N_α', is what the GJS family computed before).
ADDED = (
    "choices",
    "config_version",
    "debug_run",
    "divergence.learn_alpha",
    "divergence.prime",
    "learn_alpha",
    "module",
    "optim.alpha_lr",
    "precision",
)
#: The value of an :data:`ADDED` key (and of its copy under ``module``, which interpolates it)
#: that every run written before it existed trained with: such a folder resumes only with that
#: value (``divergence.prime=false`` is another divergence, ``precision=bf16`` other arithmetic).
ADDED_AS = {
    "divergence.prime": True,
    "learn_alpha": False,
    "divergence.learn_alpha": False,
    "precision": "fp32",
}

# --------------------------------------------------------------------------- fused members

#: Top-level keys fused members may differ in: the regulariser (``divergence``, ``alpha``,
#: ``lam``), what derives from it or names the run, each member's own loggers, the default
#: callbacks (whose work the group does into each member's folder), and what happens after
#: training (:mod:`vae_gjs.fused.plan`).
FUSABLE = (
    "divergence",
    "alpha",
    "lam",
    "run_name",
    "run_dir",
    "group",
    "tags",
    "logger",
    "callbacks",
    "evaluate",
    "eval",
)
#: Keys of ``module`` members may differ in (the regulariser again, repeated by conf/module/).
FUSABLE_MODULE = ("divergence", "lam")
#: Top-level keys every member of a group shares (the batches, the initial weights, the
#: optimiser, the length and the arithmetic): jobs that differ in one train separately.
SHARED_BY_MEMBERS = (
    "config_version",
    "learn_alpha",
    "seed",
    "likelihood",
    "optim",
    "data_dir",
    "precision",
    "threads",
    "compile",
    "ckpt_path",
    "images_every_n_epochs",
    "log_every_n_steps",
    "debug_run",
    "test",
    "objective",
    "checkpoint_artifacts",
    "choices",
    "dataset",
    "model",
    "module",
    "trainer",
)
#: The callbacks of conf/callbacks/default.yaml, whose work the fused group does itself (the
#: pictures only into files, not to the loggers; the per-step loss not at all).
FUSED_CALLBACKS = ("checkpoint", "bookkeeping", "random_state", "progress_bar", "images", "step_loss")
#: ``trainer.*`` keys the fused engine honours, with the values it supports (None: any).
FUSED_TRAINER_KEYS: dict[str, tuple[Any, ...] | None] = {
    "max_epochs": None,
    "max_steps": None,
    "limit_train_batches": None,
    "limit_val_batches": None,
    "limit_test_batches": None,
    "accelerator": ("auto", "cpu", "gpu", "cuda"),
    "devices": (1, "1", "auto"),
    "precision": ("32-true", "32", 32),
    "deterministic": None,
    "log_every_n_steps": None,
    "enable_progress_bar": None,
    "enable_model_summary": None,
}

# --------------------------------------------------------------------------- the command line

#: Trainer arguments that come from their own config group, and how to set them instead.
SET_ELSEWHERE = {
    "callbacks": "the callbacks/ group (e.g. +callbacks/early_stopping=default, callbacks.progress_bar=null)",
    "logger": "the logger/ group (logger=wandb, csv, tensorboard or none)",
    "plugins": "train.py itself (atomic checkpoint writes)",
}
#: Groups whose config may take keys added with ``+``: Trainer arguments (checked against
#: ``lightning.Trainer``), arguments of the ``_target_`` class, and logger settings.
EXTENSIBLE = ("trainer", "divergence", "model", "dataset", "logger", "callbacks")

# --------------------------------------------------------------------------- evaluation options

#: Keys of conf/eval/default.yaml that change the numbers or pictures of an evaluation: a run
#: whose eval.json was written with the same values (and the same checkpoint file) is done.
RESULT_KEYS = (
    "checkpoint",
    "splits",
    "rec_batches",
    "k",
    "n_batches",
    "batch_size",
    "bootstrap",
    "seed",
    "figures",
    "traversal_range",
    "traversal_image",
    "evidence_likelihood",
    "precision",
)
#: Keys of conf/eval/default.yaml that say only where and how fast it runs.
EVAL_RUNTIME = ("device", "threads")
#: Result keys an older eval.json lacks, with the value its evaluation had.
EVAL_ADDED = {"precision": "fp32"}


# --------------------------------------------------------------------------- reports

#: The regulariser: what the series of a report (its rows, its lines) differ in. The runs of one
#: series (one divergence, training loss and ``learn_alpha``: its α and seeds) agree on it too,
#: except for α (:data:`SKEW`): ``divergence.prime=false`` or another λ is another series.
REGULARISER = (
    "divergence",
    "alpha",
    "lam",
    "optim.alpha_lr",
    "choices.divergence",
    "module.divergence",
    "module.lam",
    "module.param_groups",
)
#: The regulariser's keys along a series: α (the cells of a row of Table 1, the points of a line).
SKEW = ("alpha", "divergence.alpha", "module.divergence.alpha")
#: Keys a resumed run must keep (:data:`MUST_KEEP`) that the runs of one report may differ in
#: besides the regulariser: the seed (a cell's runs are its seeds; ``dataset.shuffle_seed``
#: follows it), the arithmetic and the device (a report says which runs ran in which precision),
#: the config's version, the training loss (Table 1 and the likelihood report show one table per
#: loss; the figures refuse to mix losses) and whether α was learned (a cell of its own).
REPORT_MAY_DIFFER = (
    "config_version",
    "seed",
    "dataset.shuffle_seed",
    "precision",
    "module.precision",
    "trainer.accelerator",
    "trainer.devices",
    "likelihood",
    "module.likelihood",
    "learn_alpha",
)


def under(key: str, roots: tuple[str, ...]) -> bool:
    """``key`` is one of ``roots`` or lies below one."""
    return any(key == root or key.startswith(f"{root}.") for root in roots)


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A config as plain containers (``OmegaConf.to_container``), one entry per key path that
    holds a value: ``{"optim": {"lr": 1e-4}}`` -> ``{"optim.lr": 1e-4}`` (an empty node counts as
    one value, ``{}``)."""
    if isinstance(node, dict):
        flattened: dict[str, Any] = {}
        for key, value in node.items():
            flattened.update(flat(value, f"{prefix}{key}."))
        return flattened or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): node}
