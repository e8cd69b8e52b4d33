"""The config's keys are listed in one place (:mod:`vae_gjs.config.keys`), and the lists are
the config's: composed from ``conf/train.yaml``, every listed key exists, and every key of the
config is in each list that must decide about it (whether a resume may change it, whether fused
members may differ in it, whether an evaluation option changes the numbers)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from omegaconf import DictConfig, OmegaConf

from tests.conftest import compose_train
from vae_gjs.config import keys
from vae_gjs.config.keys import under

#: Compositions whose keys the lists must cover: the default, and the presets that add groups.
VARIANTS = ([], ["+experiment=table1"], ["debug=fdr"], ["+callbacks/early_stopping=default"])


def leaves(node: object, prefix: str = "") -> list[str]:
    """Every key path of ``node`` that holds a value (an empty node counts as one)."""
    if isinstance(node, DictConfig) and len(node):
        return [leaf for key in node for leaf in leaves(node._get_node(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def exists(cfg: DictConfig, key: str) -> bool:
    return OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False) != "<absent>"


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: " ".join(v) or "default")
def cfg(request: pytest.FixtureRequest) -> DictConfig:
    return compose_train(request.param)


def trainer_arguments() -> set[str]:
    import lightning as L

    return set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}


def test_every_listed_key_exists(cfg: DictConfig) -> None:
    """A ``trainer.*`` key the config leaves out must be a Trainer argument (``+trainer.<key>=``)."""
    listed = [
        *keys.MAY_CHANGE,
        *keys.MUST_KEEP,
        *keys.ADDED,
        *keys.LENGTH,
        *keys.FUSABLE,
        *keys.SHARED_BY_MEMBERS,
        *keys.REGULARISER,
        *keys.SKEW,
        *keys.REPORT_MAY_DIFFER,
    ]
    listed += [*keys.EXTENSIBLE, *(f"module.{key}" for key in keys.FUSABLE_MODULE)]
    listed += [f"trainer.{key}" for key in keys.FUSED_TRAINER_KEYS]
    listed += [f"eval.{key}" for key in (*keys.RESULT_KEYS, *keys.EVAL_RUNTIME, *keys.EVAL_ADDED)]
    addable = {f"trainer.{key}" for key in trainer_arguments()}
    missing = sorted(key for key in set(listed) if not exists(cfg, key) and key not in addable)
    assert not missing, f"listed in vae_gjs.config.keys but not in the config: {missing}"


def test_every_key_is_decided_for_a_resume(cfg: DictConfig) -> None:
    """A key that neither ``MAY_CHANGE`` nor ``MUST_KEEP`` covers is a key nobody decided about."""
    undecided = [key for key in leaves(cfg) if not under(key, (*keys.MAY_CHANGE, *keys.MUST_KEEP))]
    assert not undecided, f"add these to MAY_CHANGE or MUST_KEEP in vae_gjs/config/keys.py: {undecided}"
    both = sorted(set(keys.MAY_CHANGE) & set(keys.MUST_KEEP))
    assert not both


def test_every_top_level_key_is_decided_for_fused_members(cfg: DictConfig) -> None:
    top = set(cfg)
    assert set(keys.FUSABLE) | set(keys.SHARED_BY_MEMBERS) == top, (
        "each top-level key is FUSABLE or SHARED_BY_MEMBERS in vae_gjs/config/keys.py: "
        f"{sorted(top ^ (set(keys.FUSABLE) | set(keys.SHARED_BY_MEMBERS)))}"
    )
    assert not set(keys.FUSABLE) & set(keys.SHARED_BY_MEMBERS)


def test_the_default_callbacks_and_trainer_keys_are_the_ones_a_group_honours() -> None:
    cfg = compose_train([])
    assert set(cfg.callbacks) == set(keys.FUSED_CALLBACKS)
    assert set(cfg.trainer) <= set(keys.FUSED_TRAINER_KEYS)


def test_trainer_keys_are_lightning_arguments_and_those_set_elsewhere_are_not_in_conf() -> None:
    arguments = trainer_arguments()
    assert set(keys.FUSED_TRAINER_KEYS) <= arguments
    assert set(keys.SET_ELSEWHERE) <= arguments
    assert not set(keys.SET_ELSEWHERE) & set(compose_train([]).trainer)


def test_the_values_older_runs_trained_with_are_of_added_keys(cfg: DictConfig) -> None:
    assert all(under(key, keys.ADDED) and exists(cfg, key) for key in keys.ADDED_AS)


def test_what_reports_compare_is_what_a_resume_must_keep() -> None:
    """A report compares its runs on the keys a resumed run must keep (the rest only says how long,
    how fast or where): the keys it lets differ, and the regulariser, lie among those."""
    for key in (*keys.REGULARISER, *keys.REPORT_MAY_DIFFER):
        assert under(key, keys.MUST_KEEP) and not under(key, keys.MAY_CHANGE), key
    assert all(under(key, keys.REGULARISER) for key in keys.SKEW)
    assert not set(keys.REGULARISER) & set(keys.REPORT_MAY_DIFFER)


def test_extensible_keys_are_groups(cfg: DictConfig) -> None:
    assert all(isinstance(cfg[group], DictConfig) for group in keys.EXTENSIBLE)


def test_every_evaluation_option_changes_the_numbers_or_says_where_it_runs(cfg: DictConfig) -> None:
    assert set(keys.RESULT_KEYS) | set(keys.EVAL_RUNTIME) == set(cfg.eval)
    assert not set(keys.RESULT_KEYS) & set(keys.EVAL_RUNTIME)
    assert set(keys.EVAL_ADDED) <= set(keys.RESULT_KEYS)


def test_the_config_package_imports_no_torch() -> None:
    """``--help`` and a bad value answer before torch loads: the config package must not import it."""
    code = "import sys, vae_gjs.config, vae_gjs.config.keys; assert 'torch' not in sys.modules, 'torch'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
