"""The VAE LightningModule: the loss, z = μ at evaluation, learning on a real slice, NaN stops."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor

from vae_gjs.data import MNIST
from vae_gjs.divergences import GJS, Divergence, KLqp
from vae_gjs.errors import NonFiniteLossError
from vae_gjs.models import Burgess
from vae_gjs.models.inference import SubPixelConvTranspose2d
from vae_gjs.module import VAE, single_pass_options


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
    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return torch.full_like(mu[:, 0], float("nan")), {}


def test_non_finite_loss_names_the_step_and_the_term() -> None:
    vae = _vae(_Poisoned())
    with pytest.raises(NonFiniteLossError, match=r"step 0 .* divergence term"):
        vae._step(_batch(), "train")


def test_an_epoch_metric_keeps_a_nan_image_and_reads_nothing_back() -> None:
    """Accumulating a step's per-image values reads no value back from the device (torchmetrics'
    NaN check would: two host reads per metric and step, each a synchronisation on a GPU), and a
    NaN image makes the epoch's mean NaN instead of being dropped with a warning."""
    module = _vae()
    module._accumulate("val", "rec", torch.tensor([1.0, 3.0]))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        module._accumulate("val", "rec", torch.tensor([5.0]))
    reads = ("aten::item", "aten::_local_scalar_dense", "aten::is_nonzero")
    assert [e.key for e in profiler.key_averages() if e.key in reads] == []
    assert module.metrics["val/rec"].compute().item() == 3.0
    module._accumulate("val", "rec", torch.tensor([float("nan")]))
    assert torch.isnan(module.metrics["val/rec"].compute())


def test_loss_decreases_on_a_real_slice_of_mnist(data_dir: Path, tmp_path: Path) -> None:
    dm = MNIST(root=str(data_dir), download=False, batch_size=64)
    dm.setup()
    dm.splits["train"] = dm.splits["train"].subset(torch.arange(1024))
    dm.splits["test"] = dm.splits["test"].subset(torch.arange(512))
    torch.manual_seed(0)
    vae = VAE(
        Burgess(in_channels=1, image_size=32), GJS(alpha=0.5), optimizer=partial(torch.optim.Adam, lr=1e-3)
    )
    trainer = L.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    before = trainer.test(vae, datamodule=dm, verbose=False)[0]["test/loss"]
    trainer.fit(vae, datamodule=dm)
    on_cpu = trainer.strategy.root_device.type == "cpu"  # a CPU trains the thin last layer as sub-pixel
    assert isinstance(vae.net.decoder.deconvs[-1], SubPixelConvTranspose2d) is on_cpu
    after = trainer.test(vae, datamodule=dm, verbose=False)[0]
    assert torch.isfinite(torch.tensor(list(after.values()))).all()
    assert after["test/loss"] < 0.6 * before, (before, after)
    assert {"test/rec", "test/div", "test/kl_qp", "test/kl_q_m", "test/kl_p_m"} <= set(after)


def test_per_image_terms_are_what_training_validation_and_evaluation_share() -> None:
    vae = _vae(GJS(alpha=0.3), lam=2.0)
    x, _ = _batch()
    terms = vae.per_image_terms(x, sample=False)
    mu, logvar = vae.net.encode(x)
    kl_dims = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)
    assert torch.equal(terms.mu, mu) and terms.rec.shape == terms.div.shape == (8,)
    torch.testing.assert_close(terms.loss, terms.rec + 2.0 * terms.div)
    torch.testing.assert_close(terms.kl_qp_dims(), kl_dims)
    metrics = terms.metrics()
    assert list(metrics) == ["rec", "div", "loss", "kl_qp", "kl_q_m", "kl_p_m"]
    torch.testing.assert_close(metrics["div"], 0.7 * metrics["kl_q_m"] + 0.3 * metrics["kl_p_m"])
    torch.testing.assert_close(metrics["kl_qp"], kl_dims.sum(1))
    torch.manual_seed(5)
    sampled = vae.per_image_terms(x, sample=True)
    assert torch.equal(sampled.mu, mu) and not torch.equal(sampled.logits, terms.logits)


class _LearnedSkew(Divergence):
    """A divergence with a trainable parameter (as a learned α would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.tensor(0.5))

    def value_and_parts(self, mu: Tensor, logvar: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.alpha * KLqp()(mu, logvar), {}


def test_optimizer_gets_one_named_parameter_group_per_role_with_its_options() -> None:
    vae = VAE(
        Burgess(in_channels=1, image_size=32),
        _LearnedSkew(),
        optimizer=partial(torch.optim.Adam, lr=1e-4),
        param_groups={"divergence": {"lr": 0.25}},
    )
    optimizer = vae.configure_optimizers()
    assert [g["name"] for g in optimizer.param_groups] == ["net", "divergence"]
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 0.25]
    assert optimizer.param_groups[1]["params"] == [vae.divergence.alpha]
    net_params = sum(p.numel() for p in optimizer.param_groups[0]["params"])
    assert net_params == sum(p.numel() for p in vae.net.parameters())
    plain = _vae().configure_optimizers()  # a divergence without parameters has no group
    assert [g["name"] for g in plain.param_groups] == ["net"] and isinstance(plain, torch.optim.Adam)
    assert optimizer.defaults["fused"] is plain.defaults["fused"] is True  # the single-pass kernel


@pytest.mark.parametrize(
    ("factory", "options"),
    [
        (partial(torch.optim.Adam, lr=1e-4), {"fused": True}),  # conf/module's partial
        (torch.optim.AdamW, {"fused": True}),
        (partial(torch.optim.Adam, lr=1e-4, foreach=False), {}),  # the config chose
        (partial(torch.optim.Adam, fused=False), {}),
        (partial(torch.optim.Adagrad), {"fused": True}),
        (torch.optim.RMSprop, {}),  # no fused kernel
        (lambda params: torch.optim.SGD(params, lr=0.1), {}),  # not a signature with `fused`
    ],
)
def test_the_single_pass_kernel_only_where_it_exists_and_the_config_left_it_open(factory, options) -> None:
    assert single_pass_options(factory) == options
    parameter = torch.nn.Parameter(torch.ones(3))
    factory([parameter], **options)  # the optimiser accepts what was chosen


def test_one_instantiate_builds_the_module_of_the_composed_config() -> None:
    from tests.conftest import compose_train
    from vae_gjs.module import build_module

    cfg = compose_train(["divergence=dgjs", "alpha=0.2", "lam=3", "optim.lr=0.002", "likelihood=bernoulli"])
    vae = build_module(cfg.module, (1, 32, 32))
    assert type(vae.divergence).__name__ == "DGJS" and vae.divergence.alpha == 0.2
    assert vae.lam == 3.0 and vae.likelihood.name == "bernoulli" and vae.net.latent_dim == 10
    optimizer = vae.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 0.002
    hparams = dict(vae.hparams)  # plain values: a checkpoint holding them loads with weights_only
    assert hparams["net"]["_target_"] == "vae_gjs.models.Burgess" and hparams["net"]["in_channels"] == 1
    assert hparams["divergence"] == {
        "_target_": "vae_gjs.divergences.DGJS",
        "alpha": 0.2,
        "learn_alpha": False,
        "prime": True,
    }
    assert hparams["param_groups"] == {"divergence": {"lr": 0.002}}  # optim.alpha_lr defaults to optim.lr
    assert hparams["optimizer"] == {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.002}
