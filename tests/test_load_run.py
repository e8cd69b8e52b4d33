"""A trained model back from its run folder: ``vae_gjs.load_run`` and ``VAE.load_from_checkpoint``."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

import vae_gjs
from tests.conftest import compose_train
from vae_gjs.checkpoints import model_weights, read_checkpoint
from vae_gjs.errors import ConfigError, RunError
from vae_gjs.module import VAE, build_module


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["last", "best"])
def test_load_run_gives_the_checkpoint_weights_ready_to_use(tiny_run: Path, which: str) -> None:
    model = vae_gjs.load_run(tiny_run, checkpoint=which)
    saved = model_weights(read_checkpoint(tiny_run / "checkpoints" / f"{which}.ckpt")["state_dict"])
    state = model.state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)
    assert isinstance(model, VAE) and not model.training and model.device.type == "cpu"
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 10)
    images = model.decode(mu)
    assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    torch.testing.assert_close(images, torch.sigmoid(model.net.decode(mu)))
    samples = model.sample(5, torch.Generator().manual_seed(1))
    assert torch.equal(samples, model.sample(5, torch.Generator().manual_seed(1))) and samples.shape == (
        5,
        1,
        32,
        32,
    )


@pytest.mark.slow
def test_lightning_load_from_checkpoint_rebuilds_the_same_model(tiny_run: Path) -> None:
    loaded = VAE.load_from_checkpoint(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu")
    reference = vae_gjs.load_run(tiny_run)
    assert type(loaded.divergence) is type(reference.divergence) and loaded.lam == reference.lam
    assert _same_weights(loaded, reference)


def test_a_checkpoint_carries_what_rebuilds_net_divergence_and_optimiser(tmp_path: Path) -> None:
    cfg = compose_train(["divergence=dgjs", "alpha=0.3", "lam=2", "optim.lr=0.003", "model.latent_dim=4"])
    torch.manual_seed(0)
    module = build_module(cfg.module, (1, 16, 16))
    path = tmp_path / "model.ckpt"
    torch.save(
        {
            "state_dict": module.state_dict(),
            VAE.CHECKPOINT_HYPER_PARAMS_KEY: dict(module.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    loaded = VAE.load_from_checkpoint(path)  # the file holds plain values only: weights_only loads it
    assert type(loaded.divergence).__name__ == "DGJS" and loaded.divergence.alpha == 0.3
    assert loaded.lam == 2.0 and loaded.net.latent_dim == 4 and loaded.net.image_shape == (1, 16, 16)
    assert loaded.configure_optimizers().param_groups[0]["lr"] == 0.003
    assert _same_weights(loaded, module)


def test_load_run_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        vae_gjs.load_run(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="checkpoint='first' is unknown; allowed: best, last"):
        vae_gjs.load_run(tmp_path, checkpoint="first")
