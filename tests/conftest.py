"""Shared fixtures: the real data folder, Hydra composition of train.py's config, tiny runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vae_gjs.config import register_resolvers
from vae_gjs.datadir import ENV_DATA_DIR, SHARED_DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATA_DIR = Path(os.environ.get(ENV_DATA_DIR) or SHARED_DATA_DIR).resolve()

#: Overrides that make a run take seconds: a few steps, a slice of the test set, no W&B.
TINY = (
    "logger=csv",
    "trainer.max_steps=4",
    "trainer.limit_test_batches=2",
    "trainer.enable_progress_bar=false",
    "dataset.eval_batch_size=64",
)

register_resolvers()


@pytest.fixture(scope="module")
def single_threaded_torch() -> Iterator[None]:
    """Torch on one thread for a module of tests on small tensors: on a shared two-core machine
    torch's intra-op thread pool mostly spins (3x slower under load). The previous setting is
    restored."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The offline data folder (``$VAE_GJS_DATA_DIR`` or ``../shared/data``)."""
    if not (DATA_DIR / "MNIST" / "raw").is_dir():
        pytest.fail(f"no MNIST under {DATA_DIR}: set VAE_GJS_DATA_DIR to the shared data folder")
    return DATA_DIR


def compose_train(
    overrides: Sequence[str] = (), run_dir: Path | None = None, config: str = "train"
) -> DictConfig:
    """Compose ``conf/<config>.yaml`` as ``train.py`` would, with Hydra's runtime fields set so
    the ``${hydra:...}`` interpolations resolve; ``run_dir`` replaces the output folder."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config, overrides=list(overrides), return_hydra_config=True)
    if run_dir is not None:
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    task_cfg = cfg.copy()
    with open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg


def train_tiny(run_dir: Path, overrides: Sequence[str] = (), data_dir: Path = DATA_DIR) -> DictConfig:
    """Train a few steps into ``run_dir`` in this process; returns the config used."""
    from vae_gjs.tasks.train import train

    cfg = compose_train([*TINY, f"data_dir={data_dir}", *overrides], run_dir=run_dir)
    train(cfg)
    return cfg


def run_script(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` from the project root (as a user would), capturing output; from
    another working directory ``cwd``, a script of the project is named by its path
    (``run_script(str(ROOT / "train.py"), ..., cwd=tmp_path)``), and what it writes lands there."""
    full_env = {**os.environ, "VAE_GJS_DATA_DIR": str(DATA_DIR), "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """One finished 4-step MNIST run (kl_qp), shared by tests that only read a run folder (or
    a :func:`copy_run` of it). Trained on one thread (two spinning threads crawl on a busy
    2-core machine); the session's thread count is restored."""
    import torch

    run_dir = tmp_path_factory.mktemp("tiny_run")
    threads = torch.get_num_threads()
    try:
        train_tiny(run_dir, ["divergence=kl_qp", "threads=1"], data_dir=data_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir


def copy_run(run: Path, to: Path) -> Path:
    """A copy of the run folder ``run`` at ``to``, without its evaluation (eval.json, figures/)."""
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("eval.json", "figures"))
    return to
