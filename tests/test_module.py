"""The VAE LightningModule: the loss, z = μ at evaluation, learning on a real slice, NaN stops."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor

from vae_gjs.data import MNIST
from vae_gjs.divergences import GJS, Divergence, KLqp
from vae_gjs.errors import NonFiniteLossError
from vae_gjs.models import Burgess
from vae_gjs.module import VAE


def _vae(divergence: Divergence | None = None, lam: float = 1.0) -> VAE:
    torch.manual_seed(0)
    return VAE(Burgess(in_channels=1, image_size=32), divergence or KLqp(), lam=lam)


def _batch(n: int = 8) -> tuple[Tensor, Tensor]:
    torch.manual_seed(1)
    return torch.rand(n, 1, 32, 32), torch.zeros(n, dtype=torch.long)


def test_loss_is_reconstruction_plus_lambda_times_divergence() -> None:
    vae = _vae(GJS(alpha=0.3), lam=2.5)
    x, _ = _batch()
    mu, logvar = vae.net.encode(x)
    rec = ((torch.sigmoid(vae.net.decode(mu)) - x) ** 2).sum(dim=(1, 2, 3))
    expected = rec.mean() + 2.5 * GJS(alpha=0.3)(mu, logvar).mean()
    vae.eval()
    assert torch.allclose(vae._step((x, _), "test"), expected, rtol=1e-5)


def test_evaluation_decodes_the_mean_and_training_samples() -> None:
    vae = _vae()
    batch = _batch()
    assert torch.equal(vae._step(batch, "test"), vae._step(batch, "test"))
    assert not torch.equal(vae._step(batch, "train"), vae._step(batch, "train"))


class _Poisoned(Divergence):
    def forward(self, mu: Tensor, logvar: Tensor) -> Tensor:
        return torch.full_like(mu[:, 0], float("nan"))


def test_non_finite_loss_names_the_step_and_the_term() -> None:
    vae = _vae(_Poisoned())
    with pytest.raises(NonFiniteLossError, match=r"step 0 .* divergence term"):
        vae._step(_batch(), "train")


def test_loss_decreases_on_a_real_slice_of_mnist(data_dir: Path, tmp_path: Path) -> None:
    dm = MNIST(root=str(data_dir), download=False, batch_size=64)
    dm.setup()
    dm.splits["train"] = dm.splits["train"].subset(torch.arange(1024))
    dm.splits["test"] = dm.splits["test"].subset(torch.arange(512))
    vae = _vae(GJS(alpha=0.5))
    vae.lr = 1e-3
    trainer = L.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    before = trainer.test(vae, datamodule=dm, verbose=False)[0]["test/loss"]
    trainer.fit(vae, datamodule=dm)
    after = trainer.test(vae, datamodule=dm, verbose=False)[0]
    assert torch.isfinite(torch.tensor(list(after.values()))).all()
    assert after["test/loss"] < 0.6 * before, (before, after)
    assert {"test/rec", "test/div", "test/kl_qp", "test/kl_q_m", "test/kl_p_m"} <= set(after)
