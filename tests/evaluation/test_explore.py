"""A trained model explored in Python (``vae_gjs.open_run``), the README's snippet as written, and
the runnable example examples/explore.py."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest
import torch
from PIL import Image

import vae_gjs
from tests.conftest import ROOT, run_script
from vae_gjs.errors import ConfigError
from vae_gjs.evaluation.explore import TrainedRun
from vae_gjs.module import VAE

matplotlib.use("Agg")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tiny_run: Path) -> TrainedRun:
    return vae_gjs.open_run(tiny_run)


def _plottable(tensor: torch.Tensor) -> None:
    """What matplotlib needs: no gradient, on the CPU, float32, in [0, 1]."""
    assert not tensor.requires_grad and tensor.device.type == "cpu" and tensor.dtype == torch.float32
    assert tensor.min() >= 0 and tensor.max() <= 1


def test_images_of_the_runs_own_splits(run: TrainedRun) -> None:
    x = run.images("test", 8)
    assert x.shape == (8, 1, 32, 32)
    _plottable(x)
    assert torch.equal(run.images("test", [3, 5]), x[[3, 5]])
    assert run.targets("test", 8).shape == (8,) and len(run.images("train", 4)) == 4
    with pytest.raises(ConfigError, match="split='val' is not a split of this run"):
        run.images("val", 2)  # the run trained on all images (dataset.val_size=0)


def test_reconstruct_sample_traverse_interpolate_give_images_ready_to_plot(run: TrainedRun) -> None:
    x = run.images("test", 4)
    reconstructions = run.reconstruct(x)
    assert reconstructions.shape == x.shape
    torch.testing.assert_close(reconstructions, run.decode(run.encode(x)[0]))
    samples = run.sample(6, seed=1)
    assert samples.shape == (6, 1, 32, 32) and torch.equal(samples, run.sample(6, seed=1))
    traversal = run.traverse(x[0], dims=[2, 0], steps=5, extent=2.0)
    assert traversal.shape == (2, 5, 1, 32, 32)
    mu = run.encode(x[0])[0][0]
    expected = mu.repeat(5, 1)
    expected[:, 2] = torch.linspace(-2, 2, 5)
    torch.testing.assert_close(traversal[0], run.decode(expected))
    path = run.interpolate(x[0], x[1], steps=7)
    assert path.shape == (7, 1, 32, 32)
    torch.testing.assert_close(path[[0, -1]], reconstructions[:2])  # both ends are the images' μ
    assert run.traverse(x[0]).shape == (10, 10, 1, 32, 32)  # every dimension, most used first
    for tensor in (reconstructions, samples, traversal, path):
        _plottable(tensor)
    assert run.grid(traversal).shape == (2 * 34 + 2, 5 * 34 + 2, 3)  # [H, W, 3] for plt.imshow
    assert run.grid(samples, columns=3).shape == (2 * 34 + 2, 3 * 34 + 2, 3)
    with pytest.raises(ConfigError, match="dims: 10 is not a latent dimension; allowed: 0 to 9"):
        run.traverse(x[0], dims=[10])


def test_log_px_is_the_evaluations_estimate_image_by_image(run: TrainedRun) -> None:
    from vae_gjs.evaluation.evidence import importance_log_px

    x = run.images("test", 20)
    log_px = run.log_px(x, k=8, seed=3)
    assert log_px.shape == (20,) and log_px.dtype == torch.float64 and not log_px.requires_grad
    assert torch.equal(log_px, run.log_px(x, k=8, seed=3))
    with torch.no_grad():
        reference = importance_log_px(
            x,
            run.model.encode,
            run.model.decode_logits,
            run.likelihood.log_prob,
            8,
            torch.Generator().manual_seed(3),
        )
    torch.testing.assert_close(log_px, reference.log_px)
    assert (reference.elbo <= log_px + 1e-9).all()  # log-mean-exp of the weights >= their mean


def test_the_readmes_python_snippet_runs_as_written_and_plots(tiny_run: Path) -> None:
    """The README's Python block, with its run folder replaced by a real one, then its tensors
    drawn by matplotlib (before: ``Can't call numpy() on Tensor that requires grad``)."""
    import matplotlib.pyplot as plt

    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    folder = re.search(r'"(outputs/[^"]+)"', block).group(1)
    scope: dict = {}
    exec(compile(block.replace(folder, str(tiny_run)), "README.md", "exec"), scope)
    figure, ax = plt.subplots()
    for name, value in scope.items():
        if isinstance(value, torch.Tensor) and value.dim() == 4:
            ax.imshow(value[0, 0])  # raises on a tensor that requires grad
        elif isinstance(value, TrainedRun | VAE):
            assert not any(
                p.requires_grad
                for p in (value.model if isinstance(value, TrainedRun) else value).parameters()
            ), name
    plt.close(figure)


def test_load_from_checkpoint_is_lightnings_way_and_load_run_the_inference_one(tiny_run: Path) -> None:
    """The README's promise: the same network and weights; Lightning's in training mode with
    gradients (to train on), ``load_run``'s in evaluation mode without."""
    trainable = VAE.load_from_checkpoint(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu")
    ready = vae_gjs.load_run(tiny_run)
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())
    assert not ready.training and not any(p.requires_grad for p in ready.parameters())
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(
        trainable.eval().decode(trainable.encode(x)[0]).detach(), ready.decode(ready.encode(x)[0])
    )


def test_the_example_script_writes_its_figure(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "explore.png"
    result = run_script(
        str(ROOT / "examples" / "explore.py"), str(tiny_run), "--out", str(out), "--k", "8", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("mnist-kl_qp (") and lines[-1] == f"Wrote {out}"
    assert re.fullmatch(r"log p\(x\) of test images 0-9 \(K = 8\): (-?\d+\.\d ){9}-?\d+\.\d", lines[2]), (
        lines[2]
    )
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (840, 1200)
