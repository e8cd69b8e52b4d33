"""Rebuilding a run from its folder: the DataModule and the VAE with a checkpoint's
weights (a one-line :class:`~vae_gjs.errors.RunError` when they do not fit)."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from vae_gjs.checkpoints import check_fits, chosen_on, model_weights, read_checkpoint
from vae_gjs.config.names import CHECKPOINTS
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import RunError, check_choice
from vae_gjs.io import file_digest
from vae_gjs.module import VAE, build_module
from vae_gjs.rundir import RunDir, load_run_config


def build_datamodule(run_cfg: DictConfig, data_dir: str) -> InMemoryDataModule:
    """The run's DataModule, reading from ``data_dir`` (the folder may differ from training's)."""
    dataset_cfg = run_cfg.dataset.copy()
    with open_dict(dataset_cfg):
        dataset_cfg.root = data_dir
    try:
        datamodule = instantiate(dataset_cfg)
    except Exception as error:
        raise RunError(
            f"cannot build the dataset of config.yaml (dataset: {dataset_cfg.get('_target_')}): {error}"
        ) from error
    datamodule.setup()
    return datamodule


def module_config(run_cfg: DictConfig) -> DictConfig:
    """The run's ``module`` config; a run folder written before conf/module/ existed gets the node
    that conf/module/vae.yaml composes from its top-level keys (the model was the same)."""
    if "module" in run_cfg:
        return run_cfg.module
    return OmegaConf.create(
        {
            "_target_": "vae_gjs.module.VAE",
            "net": run_cfg.model,
            "divergence": run_cfg.divergence,
            "lam": run_cfg.lam,
            "likelihood": run_cfg.likelihood,
            "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": run_cfg.optim.lr},
            "param_groups": {"divergence": {"lr": run_cfg.optim.get("alpha_lr", run_cfg.optim.lr)}},
            "precision": "fp32",
        }
    )


def load_module(
    run: RunDir, run_cfg: DictConfig, which: str, image_shape: tuple[int, int, int]
) -> tuple[VAE, dict]:
    """The run's VAE with the weights of its ``which`` checkpoint, and facts about the checkpoint."""
    path = run.checkpoint(which)
    try:
        module = build_module(module_config(run_cfg), image_shape)
    except Exception as error:
        raise RunError(f"{run.path}: cannot rebuild the model from config.yaml: {error}") from error
    checkpoint = read_checkpoint(path)
    check_fits(checkpoint, module, path, f"the architecture of {run.config_file}")
    module.load_state_dict(model_weights(checkpoint["state_dict"]), strict=False)
    info = {
        "which": which,
        "file": str(path.relative_to(run.path)),
        "sha256": file_digest(path),
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        # what best.ckpt was chosen on (train/loss without a validation split), for either file
        "monitor": chosen_on(checkpoint),
    }
    return module.eval(), info


def load_trained(run_dir: str | Path, checkpoint: str = "last") -> tuple[RunDir, DictConfig, VAE]:
    """The run folder ``run_dir``, its config and its VAE with the weights of its ``last`` or
    ``best`` checkpoint, ready for inference: on the CPU, in evaluation mode, gradients off (so
    its outputs can go straight to numpy or matplotlib); a one-line
    :class:`~vae_gjs.errors.RunError` names what is wrong with the folder."""
    check_choice("checkpoint", checkpoint, CHECKPOINTS)
    run = RunDir.at(run_dir)
    run_cfg = load_run_config(run)
    image_shape = instantiate(run_cfg.dataset).image_shape  # known without loading the data
    module, _ = load_module(run, run_cfg, checkpoint, image_shape)
    return run, run_cfg, module.requires_grad_(False)


def load_run(run_dir: str | Path, checkpoint: str = "last") -> VAE:
    """The trained VAE of the run folder ``run_dir`` (:func:`load_trained`): ``model.encode``,
    ``model.decode``, ``model.sample``."""
    return load_trained(run_dir, checkpoint)[2]
