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
    Per-image values are averaged over each epoch with torchmetrics and logged once an epoch:
    ``<stage>/rec``, ``<stage>/div``, ``<stage>/loss``; in validation and test also
    ``<stage>/kl_qp`` and the divergence's own parts, e.g. ``<stage>/kl_q_m``.
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

    def _accumulate(self, stage: str, name: str, values: Tensor) -> None:
        """Add per-image ``values`` to the epoch's torchmetrics ``MeanMetric`` of ``stage/name``
        (created on first use, so a divergence's own parts need no declaration)."""
        key = f"{stage}/{name}"
        if key not in self.metrics:
            self.metrics[key] = MeanMetric().to(self.device)
        self.metrics[key].update(values.detach())

    def _log_epoch(self, stage: str) -> None:
        """Log the epoch means of ``stage`` (synchronised across processes by torchmetrics) and
        reset them. Logging a Metric object on every step costs Lightning about a millisecond a
        call, a fifth of a training step on a CPU; once an epoch it is free."""
        for key, metric in self.metrics.items():
            if key.startswith(f"{stage}/"):
                self.log(key, metric.compute(), prog_bar=key == f"{stage}/rec" and stage != "train")
                metric.reset()

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
        self._accumulate(stage, "rec", rec)
        self._accumulate(stage, "div", div)
        self._accumulate(stage, "loss", rec + self.lam * div)
        if stage != "train":
            self._accumulate(stage, "kl_qp", self.kl_qp(mu, logvar))
            for name, part in self.divergence.terms(mu, logvar).items():
                self._accumulate(stage, name, part)
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
        if batch_idx % self.trainer.log_every_n_steps == 0:  # the progress bar's live loss
            self.log("loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
