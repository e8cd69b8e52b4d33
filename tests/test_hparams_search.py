"""hparams_search=optuna (Hydra's Optuna sweeper) end to end, and the W&B sweep file next to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF, ROOT, compose_train, run_script

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


def test_optuna_search_of_a_few_tiny_trials_minimises_test_reconstruction(tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    result = run_script(
        "train.py",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "logger=csv",
        "trainer.max_steps=2",
        "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false",
        "images_every_n_epochs=null",
        "threads=1",
        f"hydra.sweep.dir={sweep}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = sorted(p for p in sweep.iterdir() if (p / "results.json").is_file())
    assert len(trials) == 2
    space = _optuna_space()
    scores = {}
    for trial in trials:
        config = yaml.safe_load((trial / "config.yaml").read_text())
        assert config["choices"]["divergence"] == "gjs"
        values = {"alpha": config["alpha"], "lam": config["lam"], "optim.lr": config["optim"]["lr"]}
        assert all(space[k][0] <= v <= space[k][1] for k, v in values.items()), values
        assert config["divergence"]["alpha"] == config["alpha"]
        scores[json.loads((trial / "results.json").read_text())["test/rec"]] = values
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(scores))  # train.py returned test/rec to Optuna
    assert best["best_params"] == pytest.approx(scores[min(scores)])


def test_wandb_sweep_file_searches_the_same_space_with_valid_overrides() -> None:
    sweep = yaml.safe_load((CONF / "wandb_sweep.yaml").read_text())
    assert (ROOT / sweep["program"]).is_file()
    assert sweep["metric"] == {"name": "test/rec", "goal": "minimize"}
    params = sweep["parameters"]
    ranged = {k: (v["min"], v["max"]) for k, v in params.items() if "min" in v}
    assert ranged == _optuna_space()
    low = [f"{k}={v['value'] if 'value' in v else v['min']}" for k, v in params.items()]
    cfg = compose_train(low)  # every parameter is a Hydra override train.py accepts
    assert (cfg.alpha, cfg.lam, cfg.optim.lr, cfg.divergence.alpha) == (0.0, 0.25, 1e-5, 0.0)
    assert "${args_no_hyphens}" in sweep["command"]
