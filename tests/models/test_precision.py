"""precision=bf16: the net's layers in bfloat16, everything that needs precision in float32 (the
divergences' closed forms, the likelihood, the losses and their reductions, the weights, their
gradients, Adam's state, a learned α); the channels-last training form, its transposed
convolutions' biases added apart, computes the same function with the same gradients; a moment
in another layout than its weight is put in the weight's layout; bf16 is refused where the
hardware has no bf16 units. float32 runs compute exactly what they did before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from tests.conftest import DATA_DIR, compose_train
from vae_gjs import hardware
from vae_gjs.errors import ConfigError
from vae_gjs.models import Burgess, training_form
from vae_gjs.models import precision as precision_module
from vae_gjs.models.inference import BiasAfterConvTranspose2d
from vae_gjs.models.precision import autocast, check_precision, network_outputs
from vae_gjs.module import VAE, build_module, in_layout_of

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread(single_threaded_torch: None) -> None:
    """Small tensors: one thread."""


def _module(precision: str, *overrides: str) -> VAE:
    torch.manual_seed(0)
    cfg = compose_train([f"data_dir={DATA_DIR}", f"precision={precision}", *overrides])
    module = build_module(cfg.module, (1, 32, 32))
    module.on_fit_start()  # the training form a fit on this device uses
    return module


def _images(n: int = 16) -> Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(1))


def test_bf16_runs_the_layers_in_bf16_and_the_rest_in_float32() -> None:
    module = _module("bf16", "divergence=dgjs", "alpha=0.3")
    layer_dtypes: list[torch.dtype] = []
    for layer in module.net.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)) or type(layer).__name__.startswith(
            "SubPixel"
        ):
            layer.register_forward_hook(lambda m, i, out: layer_dtypes.append(out.dtype))
    seen: dict[str, torch.dtype] = {}
    value_and_parts = module.divergence.value_and_parts

    def recording(mu: Tensor, logvar: Tensor):
        seen.update(mu=mu.dtype, logvar=logvar.dtype)
        return value_and_parts(mu, logvar)

    module.divergence.value_and_parts = recording  # type: ignore[method-assign]
    terms = module.per_image_terms(_images(), sample=True)
    assert layer_dtypes and set(layer_dtypes) == {torch.bfloat16}  # every layer: bf16
    assert seen == {"mu": torch.float32, "logvar": torch.float32}  # the closed forms: float32
    for name in ("mu", "logvar", "logits", "rec", "div", "loss"):
        assert getattr(terms, name).dtype == torch.float32, name
    assert all(part.dtype == torch.float32 for part in terms.parts.values())
    # One optimiser step: weights, gradients and Adam's moments stay float32.
    optimiser = module.configure_optimizers()
    (terms.rec.mean() + terms.div.mean()).backward()
    optimiser.step()
    for param in module.parameters():
        assert param.dtype == param.grad.dtype == torch.float32
        state = optimiser.state[param]
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32


def test_a_learned_alpha_stays_float32_under_bf16() -> None:
    module = _module("bf16", "divergence=gjs", "learn_alpha=true")
    terms = module.per_image_terms(_images(), sample=True)
    terms.loss.mean().backward()
    (alpha,) = [p for p in module.divergence.parameters() if p.requires_grad]
    assert alpha.dtype == alpha.grad.dtype == torch.float32 and torch.isfinite(alpha.grad).all()


def test_bf16_values_are_close_to_float32_and_float32_is_unchanged() -> None:
    fp32, bf16 = _module("fp32"), _module("bf16")
    bf16.load_state_dict(fp32.state_dict())  # same weights (bf16's stored channels-last)
    x = _images(64)
    with torch.no_grad():
        exact = fp32.per_image_terms(x, sample=False)
        low = bf16.per_image_terms(x, sample=False)
        # fp32: exactly the net's own calls, as before precision existed.
        mu, logvar = fp32.net.encode(x)
        assert torch.equal(exact.mu, mu) and torch.equal(exact.logvar, logvar)
        assert torch.equal(exact.logits, fp32.net.decode(mu))
    # bfloat16 keeps 8 bits of mantissa (2^-8 = 0.4% per value); the per-image SSE sums 1,024
    # pixels' errors, and agrees to a few per mille, the codes to a few hundredths.
    torch.testing.assert_close(low.rec, exact.rec, rtol=2e-2, atol=0.0)
    torch.testing.assert_close(low.mu, exact.mu, rtol=0.0, atol=5e-2)
    assert not torch.equal(low.rec, exact.rec)  # really computed in bf16


def test_the_channels_last_form_is_the_same_function_with_the_same_parameters() -> None:
    torch.manual_seed(0)
    net = Burgess(1, 32, 10)
    params = dict(net.named_parameters())
    reference = Burgess(1, 32, 10)
    reference.load_state_dict(net.state_dict())
    training_form(net, CPU, "bf16")
    assert dict(net.named_parameters()).keys() == params.keys()
    assert all(p is params[name] for name, p in net.named_parameters())  # same Parameter objects
    conv = net.encoder.convs[2].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = _images()
    mu, logvar = net.encode(x)
    torch.testing.assert_close((mu, logvar), reference.encode(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(net.decode(mu), reference.decode(mu), rtol=1e-5, atol=1e-4)
    assert net.state_dict().keys() == reference.state_dict().keys()
    # float32 keeps the layout it always had; no GPU form.
    other = training_form(Burgess(1, 32, 10), CPU, "fp32")
    assert other.encoder.convs[2].weight.is_contiguous()
    assert (
        training_form(Burgess(1, 32, 10), torch.device("meta"), "bf16")
        .encoder.convs[2]
        .weight.is_contiguous()
    )


def _decoder_gradients(net: nn.Module, precision: str) -> dict[str, Tensor]:
    torch.manual_seed(3)
    z, target = torch.randn(16, 10), torch.rand(16, 1, 32, 32)
    net.zero_grad(set_to_none=True)
    logits = network_outputs(precision, CPU, net.decode, z).float()
    ((logits - target) ** 2).sum().backward()
    return {name: p.grad for name, p in net.decoder.named_parameters()}


def test_the_bf16_form_adds_the_transposed_convolutions_biases_apart_with_the_same_gradients() -> None:
    torch.manual_seed(0)
    net = Burgess(1, 32, 10)
    reference = Burgess(1, 32, 10)
    reference.load_state_dict(net.state_dict())
    originals = [(net.decoder.deconvs[i].weight, net.decoder.deconvs[i].bias) for i in (0, 2)]
    training_form(net, CPU, "bf16")
    apart = [m for m in net.modules() if isinstance(m, BiasAfterConvTranspose2d)]
    assert len(apart) == 2  # the 32-channel layers; the thin last one is in its sub-pixel form
    assert not any(type(m) is nn.ConvTranspose2d for m in net.modules())
    for layer, (weight, bias) in zip(apart, originals, strict=True):  # the same Parameter objects
        assert layer.weight is weight and layer.bias is bias
    exact, moved = _decoder_gradients(reference, "fp32"), _decoder_gradients(net, "fp32")
    assert moved.keys() == exact.keys()
    for name, grad in exact.items():
        torch.testing.assert_close(moved[name], grad, rtol=1e-4, atol=1e-4 * grad.abs().max().item())
    # In bf16 the bias gradient is autograd's sum of the bf16 output gradient: a few per mille.
    low = _decoder_gradients(net, "bf16")
    for layer in ("deconvs.0.bias", "deconvs.2.bias"):
        assert low[layer].dtype == torch.float32
        scale = exact[layer].abs().max().item()
        torch.testing.assert_close(low[layer], exact[layer], rtol=0.0, atol=3e-2 * scale)
        assert not torch.equal(low[layer], exact[layer])


def test_a_transposed_convolution_without_a_bias_is_refused() -> None:
    with pytest.raises(ValueError, match="has no bias to move out"):
        BiasAfterConvTranspose2d(nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1, bias=False))


def _adam_after_reload(moments_channels_last: bool) -> Tensor:
    """A channels-last weight, one Adam step, its state saved with the moments in the given
    layout, reloaded through ``VAE.configure_optimizers``' optimiser, one more step."""
    module = _module("bf16")  # its conv weights are channels-last
    weight = module.net.encoder.convs[2].weight
    optimiser = module.configure_optimizers()
    gradient = torch.randn(weight.shape, generator=torch.Generator().manual_seed(2))
    for param in module.parameters():
        param.grad = torch.zeros_like(param)
    weight.grad = gradient.clone().contiguous(memory_format=torch.channels_last)
    optimiser.step()
    state = optimiser.state_dict()
    if not moments_channels_last:  # as an NCHW run's checkpoint would hold them
        for moments in state["state"].values():
            for key in ("exp_avg", "exp_avg_sq"):
                moments[key] = moments[key].contiguous()
    reloaded = module.configure_optimizers()
    reloaded.load_state_dict(state)
    reloaded.step()
    return weight.detach().clone()


def test_a_moment_in_another_layout_than_its_weight_is_put_in_the_weights_layout() -> None:
    # Adam's single-pass kernel reads memory flat: without the post-load hook the two differ by
    # ~0.1 (measured: 0.167), with it they agree to the last bit.
    assert torch.equal(_adam_after_reload(False), _adam_after_reload(True))
    nchw = torch.arange(24.0).view(1, 2, 3, 4)
    weight = torch.zeros(1, 2, 3, 4).contiguous(memory_format=torch.channels_last)
    moved = in_layout_of(nchw, weight)
    assert moved.stride() == weight.stride() and torch.equal(moved, nchw)
    assert in_layout_of(nchw, torch.zeros(1, 2, 3, 4)) is nchw  # same layout: the tensor itself


def test_network_outputs_is_the_call_itself_in_fp32() -> None:
    x = torch.randn(3, 4)
    layer = nn.Linear(4, 2)
    assert torch.equal(network_outputs("fp32", CPU, layer, x), layer(x))
    low = network_outputs("bf16", CPU, layer, x)
    assert low.dtype == torch.float32 and not torch.equal(low, layer(x))
    with pytest.raises(ValueError, match="precision='fp16' is unknown; allowed: fp32, bf16"):
        autocast("fp16", CPU)


def test_bf16_is_refused_in_one_line_where_the_cpu_has_no_bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: [])
    with pytest.raises(ConfigError) as error:
        check_precision("bf16", CPU)
    assert str(error.value) == (
        "precision=bf16 but this CPU has no native bfloat16 units (none of avx512_bf16, amx_bf16 in "
        "/proc/cpuinfo), where bf16 runs slower than fp32; allowed here: precision=fp32"
    )
    check_precision("fp32", CPU)
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: ["amx_bf16"])
    check_precision("bf16", CPU)


def test_bf16_without_the_units_is_refused_before_lightning_and_before_a_sweeps_first_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Measured before: on a CPU without bf16 units a sweep's dry run passed, then every job
    failed after Lightning loaded, each leaving a folder (train.log, .lock, wandb_id) behind."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF
    from tests.reliability.helpers import train_error
    from vae_gjs.cli import refused_jobs

    for module in (precision_module, hardware):  # budget=cpu's choice (hardware) agrees with the check
        monkeypatch.setattr(module, "cpu_bf16_units", lambda: [])
    refusal = (
        "precision=bf16 but this CPU has no native bfloat16 units (none of avx512_bf16, amx_bf16 in "
        "/proc/cpuinfo), where bf16 runs slower than fp32; allowed here: precision=fp32"
    )
    run = tmp_path / "run"
    assert train_error(["precision=bf16", "trainer.accelerator=cpu"], run, monkeypatch) == f"Error: {refusal}"
    assert not run.exists()  # refused in the entry point, before the task made the folder

    def job_config(job: list[str]) -> object:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="train", overrides=job, return_hydra_config=True)

    jobs = [["precision=bf16", "seed=1"], ["precision=fp32", "seed=1"], ["budget=cpu"]]
    assert refused_jobs(jobs, job_config) == [f"precision=bf16 seed=1: {refusal}"]
    # a cluster's launcher runs its jobs on other machines: their precision is theirs to refuse
    slurm = [[*job, "hydra/launcher=submitit_slurm"] for job in jobs]
    assert refused_jobs(slurm, job_config) == []
    for module in (precision_module, hardware):
        monkeypatch.setattr(module, "cpu_bf16_units", lambda: ["avx512_bf16"])
    assert refused_jobs(jobs, job_config) == []


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for flags, units, best in (
        ("fpu avx2 avx512f avx512_bf16", ["avx512_bf16"], "bf16"),
        ("fpu avx2 amx_bf16 amx_tile avx512_bf16", ["avx512_bf16", "amx_bf16"], "bf16"),
        ("fpu avx2 avx512f", [], "fp32"),
    ):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(
            f"processor\t: 0\nmodel name\t: X\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n"
        )
        monkeypatch.setattr(hardware, "CPUINFO", cpuinfo)
        hardware.cpu_flags.cache_clear()
        assert hardware.cpu_bf16_units() == units and hardware.fastest_cpu_precision() == best
    monkeypatch.setattr(hardware, "CPUINFO", tmp_path / "absent")
    hardware.cpu_flags.cache_clear()
    assert hardware.cpu_flags() == frozenset() and hardware.fastest_cpu_precision() == "fp32"
    hardware.cpu_flags.cache_clear()


# ------------------------------------------------------------------ the preset on every path


@pytest.fixture
def bf16_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 allowed whatever this machine's CPU (the arithmetic is the same where it is emulated)."""
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: ["amx_bf16"])


def test_budget_cpu_chooses_bf16_where_the_cpu_has_the_units(monkeypatch: pytest.MonkeyPatch) -> None:
    from omegaconf import OmegaConf

    for units, chosen in ((["avx512_bf16"], "bf16"), ([], "fp32")):
        monkeypatch.setattr(hardware, "cpu_bf16_units", lambda units=units: units)
        cfg = compose_train(["budget=cpu"])
        assert OmegaConf.to_container(cfg, resolve=True)["precision"] == chosen
        assert cfg.module.precision == chosen and cfg.eval.precision == chosen  # evaluated alike
    assert compose_train(["budget=cpu", "precision=fp32"]).precision == "fp32"  # one word overrides it
    assert compose_train([]).precision == "fp32"  # budget=paper: float32


def test_a_run_resumed_under_another_precision_is_refused(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bf16_units: None
) -> None:
    import shutil

    from tests.reliability.helpers import train_error

    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    (folder / "status.json").write_text('{"status": "running", "pid": 999999}')
    message = train_error(["precision=bf16"], folder, monkeypatch)
    assert "holds an unfinished run with another config: " in message
    assert (
        "module.precision ('fp32' in the folder, 'bf16' now), precision ('fp32' in the folder, 'bf16' now)"
        in message
    )


def test_a_bf16_run_trains_tests_and_evaluates_in_its_precision(tmp_path: Path, bf16_units: None) -> None:
    import json

    from omegaconf import OmegaConf

    from tests.conftest import train_tiny
    from vae_gjs.evaluation.loading import load_run
    from vae_gjs.evaluation.runner import evaluate_run

    run = tmp_path / "bf16"
    train_tiny(run, ["threads=1", "precision=bf16", "trainer.max_steps=6"])
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 6 and all(torch.isfinite(torch.tensor(results["test/rec"])).reshape(-1))
    assert load_run(run).precision == "bf16"  # rebuilt from the folder in its precision
    options = OmegaConf.create(
        {
            **OmegaConf.to_container(compose_train(["threads=1"]).eval),
            "data_dir": str(DATA_DIR),
            "force": False,
        }
    )
    for overrides in ({"n_batches": 2, "rec_batches": 2, "figures": False, "k": 4},):
        fp32 = evaluate_run(run, OmegaConf.merge(options, overrides))
        bf16 = evaluate_run(run, OmegaConf.merge(options, {**overrides, "precision": "bf16"}))
    assert fp32["options"]["precision"] == "fp32" and bf16["options"]["precision"] == "bf16"
    sse = fp32["metrics"]["test/sse"], bf16["metrics"]["test/sse"]
    assert sse[0] != sse[1] and abs(sse[0] - sse[1]) < 0.02 * sse[0]
    # An eval.json written before the option existed was an fp32 evaluation: up to date for fp32
    # options, redone for bf16 ones.
    record = json.loads((run / "eval.json").read_text())
    del record["options"]["precision"]
    (run / "eval.json").write_text(json.dumps(record))
    assert evaluate_run(run, OmegaConf.merge(options, overrides))["evaluated"] == record["evaluated"]
    again = evaluate_run(run, OmegaConf.merge(options, {**overrides, "precision": "bf16"}))
    assert again["options"]["precision"] == "bf16"


class _LayerDtypes(TorchDispatchMode):
    """The output dtypes of the matrix products and convolutions dispatched inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket)
        if name.endswith(("addmm", ".mm", "convolution")):
            self.dtypes.append(out.dtype)
        return out


def test_a_fused_group_trains_its_members_in_bf16(tmp_path: Path, bf16_units: None) -> None:
    from tests.fused.conftest import member_config
    from vae_gjs.fused.group import FusedGroup

    cfgs = [
        member_config(tmp_path / f"m{i}", [*o, "precision=bf16", "trainer.max_steps=3", "test=false"])
        for i, o in enumerate((("divergence=kl_qp",), ("divergence=gjs", "alpha=0.3")))
    ]
    group = FusedGroup(cfgs)
    with _LayerDtypes() as layers:
        losses, rec, div = group.engine.train_terms(_images(64))
    assert layers.dtypes and set(layers.dtypes) == {torch.bfloat16}  # every member's layers
    assert rec.dtype == div.dtype == losses.dtype == torch.float32
    assert group.run() == [None, None]
    for cfg in cfgs:
        assert json.loads((Path(cfg.run_dir) / "status.json").read_text())["status"] == "completed"
