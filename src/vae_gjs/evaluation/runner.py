"""Evaluate a finished run folder (or every run of a sweep): numbers into eval.json, PNGs into figures/.

One run: load config.yaml (refusing other config versions), rebuild the VAE and load the
checkpoint's weights (:mod:`.loading`; a learned α is one of them, so the evaluated divergence
uses the trained value, recorded as ``learned`` in eval.json), then one function per section:

* :func:`reconstruction_section`: reconstruction error and divergence terms on each split with
  z = μ (:mod:`.reconstruction`);
* :func:`evidence_section`: log p(x) by importance sampling on the first ``n_batches`` test
  batches, mean and 95% percentile bootstrap interval of the per-batch estimates (Fig. 5);
* :func:`figures_section`: reconstructions, 10×10 prior samples and latent traversals (Fig. 4);
* :func:`evidence_record` and :func:`evaluate_run`: the eval.json record (written atomically).

Runs whose config has a W&B logger also get the numbers and images in their W&B run; a sweep
is evaluated run by run by :mod:`.sweep`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from vae_gjs.config.evaluate import evidence_likelihoods
from vae_gjs.config.keys import EVAL_ADDED, RESULT_KEYS
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import ConfigError, RunError
from vae_gjs.evaluation.evidence import BootstrapCI, EvidenceResult, bootstrap_ci, model_evidence
from vae_gjs.evaluation.images import (
    label_rows,
    reconstruction_grid,
    samples_grid,
    save_png,
    traversal_grid,
    traversal_labels,
    traversal_values,
)
from vae_gjs.evaluation.loading import build_datamodule, load_module
from vae_gjs.evaluation.reconstruction import reconstruction_metrics
from vae_gjs.evaluation.wandb_log import log_to_wandb
from vae_gjs.hardware import choose_device
from vae_gjs.io import check_writable, write_json
from vae_gjs.models import build_likelihood, inference_net
from vae_gjs.models.precision import check_precision, network_outputs
from vae_gjs.module import VAE
from vae_gjs.provenance import provenance
from vae_gjs.rundir import COMPLETED, CONFIG_VERSION, RunDir, load_run_config, read_json

log = logging.getLogger(__name__)

#: Test images shown in the reconstruction grid (rows of 10, each above its reconstructions).
RECONSTRUCTION_IMAGES = 50
#: Confidence level of the model-evidence interval (Fig. 5).
LEVEL = 0.95
#: What an interval from one batch is (the bootstrap resamples batch means: one mean, no spread).
ONE_BATCH = "no interval from one batch (its bounds are the mean itself; n_batches >= 2 gives one)"
#: Shows a loop's progress: wraps an iterable of ``total`` items (a tqdm bar, or log lines).
ShowProgress = Callable[[Iterable[Any], int | None], Iterable[Any]]


def _progress_bar(desc: str) -> ShowProgress:
    """A tqdm bar on a terminal; into a log file, a line about every minute."""
    tty = sys.stderr.isatty()

    def wrap(iterable: Iterable[Any], total: int | None) -> Iterable[Any]:
        return tqdm(
            iterable, total=total, desc=desc, leave=False, mininterval=0.5 if tty else 60, dynamic_ncols=tty
        )

    return wrap


def _options(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {key: container[key] for key in RESULT_KEYS}


def existing_evaluation(run: RunDir) -> dict[str, Any] | None:
    """The run's eval.json record, or ``None`` when it has none. One rule for a corrupt eval.json,
    wherever it is read for evaluating (``run_dir=``, ``sweep_dir=``, ``report=``): it counts as
    absent, so the run is evaluated again, and a warning line names the file."""
    try:
        return read_json(run.eval_file) or None
    except RunError as error:
        log.warning(f"{error}; evaluating the run again")
        return None


def _done(run: RunDir, options: dict[str, Any]) -> dict[str, Any] | None:
    """The existing eval.json if it was written with the same options and measured the weights
    the run holds now (:meth:`~vae_gjs.rundir.RunDir.stale_evaluation`: the checkpoint file's
    SHA-256, or its step once the checkpoints are deleted)."""
    record = existing_evaluation(run)
    if record is None or {**EVAL_ADDED, **record.get("options", {})} != options:
        return None
    return record if run.stale_evaluation(record) is None else None


def _split_batches(
    datamodule: InMemoryDataModule, split: str, batch_size: int, limit: int | None
) -> tuple[Iterable[Any], int]:
    """The first ``limit`` (all if ``None``) ordered batches of ``split``, and their number."""
    if split not in datamodule.splits:
        raise ConfigError(
            f"splits: the run has no {split!r} split (its dataset.val_size is 0); "
            f"allowed here: {', '.join(sorted(datamodule.splits))}"
        )
    loader = datamodule.loader(split, batch_size)
    total = len(loader) if limit is None else min(limit, len(loader))
    return itertools.islice(loader, total), total


def reconstruction_section(
    module: VAE, datamodule: InMemoryDataModule, cfg: DictConfig, device: torch.device, timings: dict
) -> tuple[dict[str, float], dict[str, int], dict[str, list[float]]]:
    """Means over each split of ``cfg.splits`` (``<split>/<name>``), images per split, and the
    mean KL(q‖p) of each latent dimension per split."""
    metrics: dict[str, float] = {}
    n_images: dict[str, int] = {}
    kl_per_dim: dict[str, list[float]] = {}
    for split in cfg.splits:
        tick = time.perf_counter()
        torch.manual_seed(cfg.seed)  # divergences that sample (MMD) see the same noise on every re-run
        batches, total = _split_batches(datamodule, split, cfg.batch_size, cfg.rec_batches)
        shown = _progress_bar(f"{split} reconstruction")
        result = reconstruction_metrics(module, batches, device, shown, total)
        metrics.update({f"{split}/{name}": value for name, value in result.means.items()})
        n_images[split] = result.n_images
        kl_per_dim[split] = result.kl_per_dim
        timings[f"reconstruction_{split}"] = time.perf_counter() - tick
        log.info(
            f"{split}: sse={result.means['sse']:.4g} div={result.means['div']:.4g} ({result.n_images} images)"
        )
    return metrics, n_images, kl_per_dim


def evidence_section(
    module: VAE,
    datamodule: InMemoryDataModule,
    cfg: DictConfig,
    likelihoods: list[str],
    device: torch.device,
    timings: dict,
) -> dict[str, tuple[EvidenceResult, BootstrapCI]]:
    """Importance-sampled test log p(x) under each decoder likelihood of ``likelihoods`` (from
    the same samples and decodes) and the bootstrap interval of its per-batch estimates."""
    tick = time.perf_counter()
    batches, total = _split_batches(datamodule, "test", cfg.batch_size, cfg.n_batches)
    fast = inference_net(module.net)  # the same function as net.decode, 2-3x faster on a CPU
    evidences = model_evidence(
        module.encode,
        functools.partial(network_outputs, module.precision, device, fast.decode),
        {name: build_likelihood(name).log_prob for name in likelihoods},
        batches,
        k=cfg.k,
        n_batches=total,
        seed=cfg.seed,
        device=device,
        progress=_progress_bar(f"log p(x), K={cfg.k}"),
    )
    results = {}
    for name, evidence in evidences.items():
        ci = bootstrap_ci(evidence.batch_log_px, cfg.bootstrap, LEVEL, seed=cfg.seed)
        results[name] = (evidence, ci)
        interval = f"95% CI [{ci.low:.4g}, {ci.high:.4g}]" if len(evidence.batch_log_px) > 1 else ONE_BATCH
        images = evidence.n_images
        log.info(f"test log p(x) under the {name} likelihood = {ci.mean:.4g}, {interval} ({images} images)")
    timings["evidence"] = time.perf_counter() - tick
    return results


def evidence_metrics(results: dict[str, tuple[EvidenceResult, BootstrapCI]]) -> dict[str, float]:
    """``test/log_px`` (with its CI) and ``test/elbo`` of the first likelihood, and the same with a
    ``_<likelihood>`` suffix for every likelihood."""
    metrics = {}
    for number, (name, (evidence, ci)) in enumerate(results.items()):
        for suffix in ("", f"_{name}") if number == 0 else (f"_{name}",):
            metrics[f"test/log_px{suffix}"] = ci.mean
            metrics[f"test/log_px{suffix}_ci_low"] = ci.low
            metrics[f"test/log_px{suffix}_ci_high"] = ci.high
            metrics[f"test/elbo{suffix}"] = evidence.image_mean_elbo
    return metrics


def figures_section(
    module: VAE,
    datamodule: InMemoryDataModule,
    run: RunDir,
    cfg: DictConfig,
    test_kl_per_dim: list[float] | None,
    device: torch.device,
    timings: dict,
) -> tuple[dict[str, str], dict[str, Any], list[float]]:
    """figures/reconstructions.png, samples.png and traversals.png (rows ordered by each
    dimension's test KL and labelled with it, computed here when the test split was not
    evaluated); returns their
    paths relative to the run, the traversal's description and the test KL per dimension."""
    tick = time.perf_counter()
    if test_kl_per_dim is None:
        torch.manual_seed(cfg.seed)
        batches, _ = _split_batches(datamodule, "test", cfg.batch_size, cfg.rec_batches)
        test_kl_per_dim = reconstruction_metrics(module, batches, device).kl_per_dim
    dims = sorted(range(len(test_kl_per_dim)), key=lambda d: -test_kl_per_dim[d])
    test = datamodule.splits["test"]
    shown = test.images.batch(torch.arange(min(RECONSTRUCTION_IMAGES, len(test)))).to(device)
    traversed = test.images.batch(torch.tensor([cfg.traversal_image])).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    pictures = {
        "reconstructions": reconstruction_grid(module.net, shown),
        "samples": samples_grid(module.net, len(dims), 10, generator),
        "traversals": label_rows(
            traversal_grid(module.net, traversed, dims, extent=cfg.traversal_range),
            traversal_labels(dims, test_kl_per_dim),
        ),
    }
    figures = {
        name: str(save_png(picture, run.figures / f"{name}.png").relative_to(run.path))
        for name, picture in pictures.items()
    }
    traversal = {
        "image_index": cfg.traversal_image,
        "dims_by_test_kl": dims,
        "values": [round(float(v), 6) for v in traversal_values(extent=cfg.traversal_range)],
        "range": "z_d set to 10 equidistant values in [-traversal_range, traversal_range] (prior N(0,1))",
    }
    timings["figures"] = time.perf_counter() - tick
    return figures, traversal, test_kl_per_dim


def evidence_record(
    evidence: EvidenceResult, ci: BootstrapCI, cfg: DictConfig, likelihood: str, trained_with: str
) -> dict:
    """An ``evidence`` entry of eval.json: log p(x) under the decoder ``likelihood`` of a model
    trained with the ``trained_with`` one."""
    return {
        "estimator": "importance sampling, proposal q(z|x), log-mean-exp of K weights",
        "likelihood": likelihood,
        "trained_with": trained_with,
        "k": cfg.k,
        "batch_size": cfg.batch_size,
        "n_batches": len(evidence.batch_log_px),
        "n_images": evidence.n_images,
        "mean": ci.mean,
        "ci95": [ci.low, ci.high],
        "ci95_note": ONE_BATCH if len(evidence.batch_log_px) < 2 else None,
        "bootstrap_resamples": ci.resamples,
        "bootstrap_std_error": ci.std_error,
        "image_mean": evidence.image_mean_log_px,
        "elbo_mean": evidence.image_mean_elbo,
        "batch_log_px": evidence.batch_log_px,
        "batch_elbo": evidence.batch_elbo,
    }


def evaluated_module(
    run: RunDir, run_cfg: DictConfig, cfg: DictConfig, device: torch.device, image_shape: tuple[int, int, int]
) -> tuple[VAE, dict]:
    """The run's model from its ``cfg.checkpoint`` on ``device``, computing in the evaluation's
    precision (whatever the training's), and facts about the checkpoint."""
    module, checkpoint = load_module(run, run_cfg, cfg.checkpoint, image_shape)
    check_precision(cfg.precision, device)
    module.precision = cfg.precision
    module.to(device)
    if device.type == "cpu":
        # oneDNN's transposed convolutions run ~1.5x faster in channels-last layout on a CPU
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module, checkpoint


def evaluate_run(path: str | Path, cfg: DictConfig, redo: bool = False) -> dict[str, Any]:
    """Evaluate one run folder; returns the eval.json record (the existing one for a done run,
    unless ``cfg.force`` or ``redo``)."""
    started = time.perf_counter()
    run = RunDir.at(path)
    run_cfg = load_run_config(run)
    options = _options(cfg)
    device = choose_device("device", cfg.device)
    if not (cfg.force or redo):
        existing = _done(run, options)
        if existing is not None:
            log.info(f"Skipping {run.path}: eval.json is up to date with these options (force=true to redo)")
            return existing
    ckpt_path = run.checkpoint(cfg.checkpoint)
    if run.status != COMPLETED:
        log.warning(
            f"{run.path}: training status is {run.status!r}, not completed; evaluating its {ckpt_path.name}"
        )
    timings: dict[str, float] = {}
    for folder in (run.path, run.figures) if cfg.figures else (run.path,):
        check_writable(folder)  # before the long computation, not after it

    datamodule = build_datamodule(run_cfg, cfg.data_dir)
    n_test = len(datamodule.splits["test"])
    if cfg.figures and cfg.traversal_image >= n_test:  # checked before the long work, not after
        raise ConfigError(f"traversal_image={cfg.traversal_image} is not allowed; allowed: 0 to {n_test - 1}")
    module, checkpoint = evaluated_module(run, run_cfg, cfg, device, datamodule.image_shape)
    timings["load"] = time.perf_counter() - started
    # a learned α is a weight of the checkpoint, not the starting value in config.yaml
    learned = {name: float(value) for name, value in module.divergence.learned().items()}
    log.info(
        f"Evaluating {run.path} ({checkpoint['file']}, epoch {checkpoint['epoch']}) on {device}"
        + "".join(f", learned {name}={value:.6g}" for name, value in learned.items())
    )

    metrics, n_images, kl_per_dim = reconstruction_section(module, datamodule, cfg, device, timings)
    likelihoods = evidence_likelihoods(cfg.get("evidence_likelihood"), run_cfg.likelihood)
    evidences = evidence_section(module, datamodule, cfg, likelihoods, device, timings)
    metrics.update(evidence_metrics(evidences))
    by_likelihood = {
        name: evidence_record(evidence, ci, cfg, name, run_cfg.likelihood)
        for name, (evidence, ci) in evidences.items()
    }
    figures: dict[str, str] = {}
    traversal: dict[str, Any] = {}
    if cfg.figures:
        figures, traversal, kl_per_dim["test"] = figures_section(
            module, datamodule, run, cfg, kl_per_dim.get("test"), device, timings
        )
    timings["total"] = time.perf_counter() - started
    record = {
        "run_dir": str(run.path.resolve()),
        "run_name": run_cfg.get("run_name"),
        "run_status": run.status,
        "config_version": CONFIG_VERSION,
        "options": options,
        "eval_config": OmegaConf.to_container(cfg, resolve=True),
        "seed": cfg.seed,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "checkpoint": checkpoint,
        "learned": learned,
        "metrics": metrics,
        "n_images": n_images,
        "kl_per_dim": kl_per_dim,
        "evidence": by_likelihood[likelihoods[0]],
        "evidence_by_likelihood": by_likelihood,
        "figures": figures,
        "traversal": traversal,
        "timings_s": {name: round(seconds, 2) for name, seconds in timings.items()},
        "versions": {"torch": torch.__version__},
        "provenance": provenance(),
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(run.eval_file, record)
    log.info(f"Wrote {run.eval_file} in {timings['total']:.1f} s")
    log_to_wandb(
        run, run_cfg, record["eval_config"], metrics, {name: run.path / p for name, p in figures.items()}
    )
    return record
