"""The VAE as a LightningModule: loss = reconstruction + λ · divergence (Eq. 22 with fixed λ)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from vae_gjs.divergences import Divergence, KLqp
from vae_gjs.errors import NonFiniteLossError, check_non_negative, check_positive_real
from vae_gjs.models import build_likelihood

STAGES = ("train", "val", "test")
#: Metrics every stage logs, each averaged over the images of the epoch.
METRICS = ("rec", "div", "loss")


class VAE(L.LightningModule):
    """A VAE with a pluggable latent regulariser.

    Args:
        net: an autoencoder with ``encode(x) -> (mu, logvar)`` and ``decode(z) -> logits``.
        divergence: a :class:`~vae_gjs.divergences.Divergence` of q(z|x) against N(0, I).
        lam: λ, the weight of the divergence.
        likelihood: ``"gaussian"`` (per-image SSE, the metric of Table 1) or ``"bernoulli"``.
        lr: Adam learning rate.

    Training samples z with the reparameterisation trick; validation and test decode z = μ.
    Logged per epoch (``<stage>/rec``, ``<stage>/div``, ``<stage>/loss``; in validation and
    test also ``<stage>/kl_qp`` and the divergence's own parts, e.g. ``<stage>/kl_q_m``).
    """

    def __init__(
        self,
        net: nn.Module,
        divergence: Divergence,
        lam: float = 1.0,
        likelihood: str = "gaussian",
        lr: float = 1e-4,
    ) -> None:
        super().__init__()
        self.net = net
        self.divergence = divergence
        self.lam = check_non_negative("lam", lam)
        self.likelihood = build_likelihood(likelihood)
        self.lr = check_positive_real("optim.lr", lr)
        self.kl_qp = KLqp()
        self.save_hyperparameters(ignore=["net", "divergence"])
        self.metrics = nn.ModuleDict()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction logits decoded from z = μ, with μ and log σ²."""
        mu, logvar = self.net.encode(x)
        return self.net.decode(mu), mu, logvar

    def _log_mean(self, stage: str, name: str, values: Tensor, prog_bar: bool = False) -> None:
        """Average ``values`` over the epoch's images with a torchmetrics ``MeanMetric`` (created
        on first use, so a divergence's own parts need no declaration) and log it per epoch."""
        key = f"{stage}_{name}"
        if key not in self.metrics:
            self.metrics[key] = MeanMetric().to(self.device)
        self.metrics[key].update(values.detach())
        self.log(
            f"{stage}/{name}",
            self.metrics[key],
            on_step=False,
            on_epoch=True,
            prog_bar=prog_bar,
            batch_size=values.shape[0],
            metric_attribute=f"metrics.{key}",
        )

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x = batch[0]
        mu, logvar = self.net.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if stage == "train" else mu
        logits = self.net.decode(z)
        rec = self.likelihood.loss(logits, x)
        div = self.divergence(mu, logvar)
        loss = rec.mean() + self.lam * div.mean()
        if stage == "train" and not torch.isfinite(loss):
            self._raise_non_finite(rec, div)
        self._log_mean(stage, "rec", rec, prog_bar=stage != "train")
        self._log_mean(stage, "div", div)
        self._log_mean(stage, "loss", rec + self.lam * div)
        if stage != "train":
            self._log_mean(stage, "kl_qp", self.kl_qp(mu, logvar))
            for name, part in self.divergence.terms(mu, logvar).items():
                self._log_mean(stage, name, part)
        return loss

    def _raise_non_finite(self, rec: Tensor, div: Tensor) -> None:
        bad = [
            name
            for name, term in (("reconstruction", rec), ("divergence", div))
            if not torch.isfinite(term).all()
        ]
        raise NonFiniteLossError(
            f"non-finite loss at step {self.global_step} (epoch {self.current_epoch}) "
            f"in the {' and the '.join(bad) or 'total'} term; the last checkpoint is kept"
        )

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
