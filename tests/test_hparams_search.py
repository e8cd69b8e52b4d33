"""hparams_search=optuna (Hydra's Optuna sweeper) as the README runs it, and the W&B sweep file
next to it: both select on a validation split the search holds out itself, never on the test set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF, ROOT, compose_train
from tests.readme import command, run_as_typed

pytestmark = pytest.mark.slow


def _optuna_space() -> dict[str, tuple[float, float]]:
    params = yaml.safe_load((CONF / "hparams_search" / "optuna.yaml").read_text())["hydra"]["sweeper"][
        "params"
    ]
    space = {}
    for name, text in params.items():
        low, high = re.search(r"interval\(([^,]+),([^)]+)\)", text).groups()
        space[name] = (float(low), float(high))
    return space


def test_the_readmes_optuna_smoke_test_selects_on_its_own_validation_split(tmp_path: Path) -> None:
    """The README's smoke test, word for word, from an empty folder: 3 trials, each scored by the
    reconstruction error of its final model on 10,000 held-out training images (val/rec)."""
    words = command("hparams_search=optuna hydra.sweeper.n_trials=3")
    result = run_as_typed(words, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun" / "optuna" / "mnist").iterdir()
    trials = sorted(p for p in sweep.iterdir() if (p / "results.json").is_file())
    assert len(trials) == 3
    space = _optuna_space()
    assert set(space) == {"alpha", "optim.lr"}  # λ stays the paper's 1: a free λ degenerates
    scores = {}
    for trial in trials:
        config = yaml.safe_load((trial / "config.yaml").read_text())
        assert config["choices"]["divergence"] == "gjs" and config["lam"] == 1.0
        assert config["objective"] == "val/rec" and config["dataset"]["val_size"] == 10_000
        values = {"alpha": config["alpha"], "optim.lr": config["optim"]["lr"]}
        assert all(space[k][0] <= v <= space[k][1] for k, v in values.items()), values
        assert config["divergence"]["alpha"] == config["alpha"]
        results = json.loads((trial / "results.json").read_text())
        assert results["val/rec"] != results["test/rec"]
        scores[results["val/rec"]] = values
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(scores))  # train.py returned val/rec to Optuna
    assert best["best_params"] == pytest.approx(scores[min(scores)])
    assert "[HYDRA] Best value:" in result.stdout + result.stderr


def test_a_search_with_a_bad_base_value_is_refused_before_its_first_trial(tmp_path: Path) -> None:
    words = [*command("hparams_search=optuna hydra.sweeper.n_trials=3"), "dataset.val_size=0"]
    result = run_as_typed(words, tmp_path, timeout=120)
    assert result.returncode == 1 and not list(tmp_path.iterdir())
    heading, line = result.stderr.splitlines()
    assert heading == "Error: this search is refused; nothing was run:"
    assert line.startswith("  objective=val/rec needs a validation split, but dataset.val_size=0")
    searched = [*words[:-1], "divergence=kl_qp"]  # α searched where it has no effect
    result = run_as_typed(searched, tmp_path, timeout=120)
    assert result.returncode == 1 and not list(tmp_path.iterdir())
    assert (
        "hydra.sweeper.params.alpha=interval(0.0, 1.0) with divergence=kl_qp: kl_qp has no skew"
        in result.stderr
    )


def test_wandb_sweep_file_searches_the_same_space_with_valid_overrides() -> None:
    sweep = yaml.safe_load((CONF / "wandb_sweep.yaml").read_text())
    assert (ROOT / sweep["program"]).is_file()
    assert sweep["metric"] == {"name": "val/rec", "goal": "minimize"}
    params = sweep["parameters"]
    ranged = {k: (v["min"], v["max"]) for k, v in params.items() if "min" in v}
    assert ranged == _optuna_space()
    low = [f"{k}={v['value'] if 'value' in v else v['min']}" for k, v in params.items()]
    cfg = compose_train(low)  # every parameter is a Hydra override train.py accepts
    assert (cfg.alpha, cfg.lam, cfg.optim.lr, cfg.divergence.alpha) == (0.0, 1.0, 1e-5, 0.0)
    assert cfg.dataset.val_size == 10_000  # val/rec exists: the run holds out its validation split
    assert "${args_no_hyphens}" in sweep["command"]
