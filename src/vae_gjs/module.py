"""The VAE as a LightningModule: loss = reconstruction + λ · divergence (Eq. 22 with fixed λ)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torchmetrics import MeanMetric

from vae_gjs.divergences import Divergence, kl_normal_dims
from vae_gjs.errors import ConfigError, NonFiniteLossError, check_choice, check_non_negative
from vae_gjs.models import build_likelihood, training_form
from vae_gjs.models.precision import PRECISIONS, network_outputs

#: Builds an optimiser from parameter groups (``functools.partial(torch.optim.Adam, lr=...)``).
OptimizerFactory = Callable[[Iterable[dict[str, Any]]], torch.optim.Optimizer]
#: The default optimiser: Adam at the paper's learning rate 1e-4.
DEFAULT_OPTIMIZER: dict[str, Any] = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4}


@dataclass(frozen=True)
class PerImageTerms:
    """Everything the VAE computes for a batch ``x [B, C, H, W]``, one value per image.

    ``rec`` is the likelihood's reconstruction loss, ``div`` the divergence, ``loss`` =
    rec + λ·div, ``parts`` the divergence's named parts (e.g. ``kl_q_m``, ``kl_p_m``); ``mu``,
    ``logvar`` ``[B, d]`` and ``logits`` (the decoder's output) are kept for further metrics.
    """

    mu: Tensor
    logvar: Tensor
    logits: Tensor
    rec: Tensor
    div: Tensor
    loss: Tensor
    parts: dict[str, Tensor]

    def kl_qp_dims(self) -> Tensor:
        """KL(q(z|x) ‖ N(0, I)) per image and latent dimension ``[B, d]`` (Eq. 3 before the sum)."""
        zeros = torch.zeros_like(self.mu)
        return kl_normal_dims(self.mu, self.logvar, zeros, zeros)

    def metrics(self) -> dict[str, Tensor]:
        """The per-image values that validation, test and evaluation report: ``rec``, ``div``,
        ``loss``, ``kl_qp`` (KL(q‖p) for every divergence) and the divergence's parts."""
        return {
            "rec": self.rec,
            "div": self.div,
            "loss": self.loss,
            "kl_qp": self.kl_qp_dims().sum(-1),
            **self.parts,
        }


def single_pass_options(factory: Callable[..., torch.optim.Optimizer]) -> dict[str, bool]:
    """``{"fused": True}`` if the optimiser ``factory`` (a class or a ``functools.partial`` of one)
    has a single-pass (fused) kernel and its config sets neither ``fused`` nor ``foreach``; else
    ``{}``. Adam's is one pass over each weight, gradient and moment where the default makes one
    per operation (measured in docs/performance.md); the same update, to float32 rounding."""
    try:
        parameters = inspect.signature(getattr(factory, "func", factory)).parameters
    except (TypeError, ValueError):
        return {}
    chosen = {"fused", "foreach"} & set(getattr(factory, "keywords", {}))
    return {"fused": True} if "fused" in parameters and not chosen else {}


def in_layout_of(value: Tensor, param: Tensor) -> Tensor:
    """An optimiser state ``value`` (e.g. Adam's moment) in ``param``'s memory layout (itself if
    already so). Adam's single-pass kernel walks a weight, its gradient and its moments as flat
    memory, so a moment read from a checkpoint in another layout (a channels-last bf16 run's
    against an NCHW weight, or the reverse) would update the weight with the wrong elements."""
    if value.shape != param.shape or value.stride() == param.stride():
        return value
    return torch.empty_like(param, dtype=value.dtype).copy_(value)


def _moments_in_weight_layout(optimizer: torch.optim.Optimizer) -> None:
    """An optimiser's ``load_state_dict`` post-hook: every loaded state tensor in the layout of its
    weight (:func:`in_layout_of`)."""
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                state[key] = in_layout_of(value, param)


def non_finite_error(step: int, epoch: int, rec: Tensor, div: Tensor) -> NonFiniteLossError:
    """The error of a non-finite training loss, naming the term(s) that are not finite."""
    bad = [
        name
        for name, term in (("reconstruction", rec), ("divergence", div))
        if not torch.isfinite(term).all()
    ]
    return NonFiniteLossError(
        f"non-finite loss at step {step} (epoch {epoch}) in the {' and the '.join(bad) or 'total'} term"
    )


def _plain(config: Any) -> Any:
    """A config as plain containers (what a checkpoint can hold with ``weights_only=True``)."""
    return OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config


class VAE(L.LightningModule):
    """A VAE with a pluggable latent regulariser.

    Args:
        net: an autoencoder with ``encode(x) -> (mu, logvar)`` and ``decode(z) -> logits``, or
            its config (``_target_`` and arguments), instantiated here.
        divergence: a :class:`~vae_gjs.divergences.Divergence` of q(z|x) against N(0, I), or
            its config.
        lam: λ, the weight of the divergence.
        likelihood: ``"gaussian"`` (per-image SSE, the metric of Table 1) or ``"bernoulli"``.
        optimizer: builds the optimiser from parameter groups: a callable or a ``_partial_``
            config (default: Adam, lr 1e-4).
        param_groups: options per parameter role (``net``, ``divergence``), e.g.
            ``{"divergence": {"lr": 1e-2}}``; a role without parameters has no group.
        precision: the arithmetic of the net's layers, ``"fp32"`` or ``"bf16"`` (bfloat16
            autocast; the losses, divergences, weights and Adam stay float32:
            :mod:`vae_gjs.models.precision`).

    Configs given for ``net``, ``divergence`` and ``optimizer`` are saved as hyperparameters, so
    a checkpoint can rebuild the model. Training samples z with the reparameterisation trick;
    validation and test decode z = μ. Per-image values are averaged over each epoch with
    torchmetrics and logged once an epoch: ``<stage>/rec``, ``<stage>/div``, ``<stage>/loss``;
    in validation and test also ``<stage>/kl_qp`` and the divergence's parts, e.g. ``<stage>/kl_q_m``;
    the divergence's learned scalars at the end of each training epoch, e.g. ``train/alpha``.
    """

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        divergence: Divergence | Mapping[str, Any],
        lam: float = 1.0,
        likelihood: str = "gaussian",
        optimizer: OptimizerFactory | Mapping[str, Any] | None = None,
        param_groups: Mapping[str, Mapping[str, Any]] | None = None,
        precision: str = "fp32",
    ) -> None:
        super().__init__()
        optimizer = DEFAULT_OPTIMIZER if optimizer is None else optimizer
        configs = {"net": net, "divergence": divergence, "optimizer": optimizer}
        self.save_hyperparameters(
            {
                **{name: _plain(value) for name, value in configs.items() if isinstance(value, Mapping)},
                "lam": lam,
                "likelihood": likelihood,
                "param_groups": _plain(param_groups) or {},
                "precision": precision,
            }
        )
        self.net = instantiate(net) if isinstance(net, Mapping) else net
        self.divergence = instantiate(divergence) if isinstance(divergence, Mapping) else divergence
        self.optimizer = instantiate(optimizer) if isinstance(optimizer, Mapping) else optimizer
        self.param_groups = {role: dict(options) for role, options in (param_groups or {}).items()}
        self.lam = check_non_negative("lam", lam)
        self.likelihood = build_likelihood(likelihood)
        self.precision = check_choice("precision", precision, PRECISIONS)
        self.metrics = nn.ModuleDict()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction logits decoded from z = μ, with μ and log σ²."""
        mu, logvar = self.encode(x)
        return self.decode_logits(mu), mu, logvar

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ and log σ² ``[B, d]`` of q(z|x) for images ``x [B, C, H, W]`` in [0, 1] (float32,
        computed in the run's precision)."""
        return network_outputs(self.precision, self.device, self.net.encode, x)

    def decode_logits(self, z: Tensor) -> Tensor:
        """The decoder's logits ``[B, C, H, W]`` (float32, computed in the run's precision)."""
        return network_outputs(self.precision, self.device, self.net.decode, z)

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean images ``sigmoid(logits)`` ``[B, C, H, W]`` in [0, 1] for ``z [B, d]``."""
        return torch.sigmoid(self.decode_logits(z))

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images decoded from z ~ N(0, I) (the noise drawn on the CPU from ``generator``)."""
        z = torch.randn((n, self.net.latent_dim), generator=generator)
        return self.decode(z.to(self.device))

    def epoch_metrics(self, image_shape: tuple[int, int, int], validation: bool) -> set[str]:
        """What this module logs at the end of a training epoch (``train/rec``, ``train/div``,
        ``train/loss``, a learned parameter) and, with ``validation``, of a validation epoch
        (``val/`` and :meth:`PerImageTerms.metrics`, the divergence's parts included: found by
        passing one blank image through the model, in eval mode)."""
        names = {f"train/{name}" for name in ("rec", "div", "loss", *self.divergence.learned())}
        if validation:
            was_training = self.training
            self.eval()
            try:
                with torch.no_grad():
                    probe = self.per_image_terms(
                        torch.zeros(1, *image_shape, device=self.device), sample=False
                    )
            finally:
                self.train(was_training)
            names |= {f"val/{name}" for name in probe.metrics()}
        return names

    def per_image_terms(self, x: Tensor, sample: bool) -> PerImageTerms:
        """Encode ``x``, decode z (``sample``: z ~ q(z|x) by reparameterisation; else z = μ) and
        compute the reconstruction, the divergence with its parts and rec + λ·div per image.
        The one computation behind training, validation, test and evaluation."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        logits = self.decode_logits(z)
        rec = self.likelihood.loss(logits, x)
        div, parts = self.divergence.value_and_parts(mu, logvar)
        return PerImageTerms(mu, logvar, logits, rec, div, rec + self.lam * div, parts)

    def _accumulate(self, stage: str, name: str, values: Tensor) -> None:
        """Add per-image ``values`` to the epoch's torchmetrics ``MeanMetric`` of ``stage/name``
        (created on first use, so a divergence's own parts need no declaration). Without its NaN
        check (``nan_strategy="disable"``): a NaN image makes the epoch's mean NaN, where the
        check would drop it with a warning, and no value is read back from the device each step
        (the check's two host reads per metric; a synchronisation each on a GPU). Training stops
        at a non-finite loss before any reaches a metric (:func:`non_finite_error`)."""
        key = f"{stage}/{name}"
        if key not in self.metrics:
            self.metrics[key] = MeanMetric(nan_strategy="disable").to(self.device)
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
        training = stage == "train"
        terms = self.per_image_terms(batch[0], sample=training)
        loss = terms.rec.mean() + self.lam * terms.div.mean()
        if training and not torch.isfinite(loss):
            self._raise_non_finite(terms.rec, terms.div)
        metrics = {"rec": terms.rec, "div": terms.div, "loss": terms.loss} if training else terms.metrics()
        for name, values in metrics.items():
            self._accumulate(stage, name, values)
        return loss

    def _raise_non_finite(self, rec: Tensor, div: Tensor) -> None:
        raise non_finite_error(self.global_step, self.current_epoch, rec, div)

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
        for name, value in self.divergence.learned().items():  # e.g. train/alpha, a learned α
            self.log(f"train/{name}", value)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's optimiser step, then the divergence's projection (a learned α clamped
        to [0, 1]), so every forward pass sees a parameter inside its domain."""
        super().optimizer_step(*args, **kwargs)
        self.divergence.project_()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def parameter_groups(self) -> list[dict[str, Any]]:
        """One optimiser parameter group per role that has trainable parameters: ``net`` (the
        encoder/decoder) and ``divergence`` (e.g. a learned α), each named and carrying the
        options of ``param_groups[role]`` (its own learning rate, ...)."""
        groups = []
        for role, part in (("net", self.net), ("divergence", self.divergence)):
            params = [p for p in part.parameters() if p.requires_grad]
            if params:
                groups.append({"name": role, "params": params, **self.param_groups.get(role, {})})
        return groups

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.parameter_groups(), **single_pass_options(self.optimizer))
        optimizer.register_load_state_dict_post_hook(_moments_in_weight_layout)
        return optimizer

    def on_fit_start(self) -> None:
        """Train the net in its form for this device and precision
        (:func:`~vae_gjs.models.training_form`)."""
        training_form(self.net, self.device, self.precision)


def build_module(config: Mapping[str, Any], image_shape: tuple[int, int, int]) -> VAE:
    """The VAE of a ``module`` config (conf/module/vae.yaml: ``_target_``, ``net``,
    ``divergence``, ``lam``, ``likelihood``, ``optimizer``) for images of shape ``(C, H, W)``:
    one ``instantiate``, with the net's ``in_channels`` and ``image_size`` taken from the images.
    A model too large for this machine's memory (``model.latent_dim=1000000000``) is a one-line
    :class:`ConfigError` naming the net's sizes, not an allocator's traceback."""
    node = _plain(config)
    node = {**node, "net": {**node["net"], "in_channels": image_shape[0], "image_size": image_shape[1]}}
    try:
        return instantiate(node, _recursive_=False)
    except InstantiationException as error:
        cause: BaseException = error
        while cause.__cause__ is not None:  # the net's own instantiate wraps the allocator's error
            cause = cause.__cause__
        if not (isinstance(cause, MemoryError) or "can't allocate memory" in str(cause)):
            raise
        sizes = ", ".join(
            f"model.{key}={value}"
            for key, value in config["net"].items()
            if isinstance(value, int) and not isinstance(value, bool)
        )
        reason = " ".join(str(cause).split())[:200]
        raise ConfigError(
            f"the model does not fit in this machine's memory ({sizes}; {reason}); allowed: a smaller model"
        ) from error
