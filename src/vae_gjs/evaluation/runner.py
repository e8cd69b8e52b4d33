"""Evaluate a finished run folder (or every run of a sweep): numbers into eval.json, PNGs into figures/.

One run: load config.yaml (refusing other config versions), rebuild the VAE with
:func:`vae_gjs.training.build_module`, load the checkpoint's weights (a clear
:class:`~vae_gjs.errors.RunError` when they do not fit), then

* reconstruction error and divergence terms on each split with z = μ (:mod:`.reconstruction`);
* log p(x) by importance sampling on the first ``n_batches`` test batches, mean and 95%
  percentile bootstrap interval of the per-batch estimates (:mod:`.evidence`, Fig. 5);
* reconstructions, 10×10 prior samples and latent traversals (:mod:`.images`, Fig. 4).

``eval.json`` (written atomically) is the record; runs whose config has a W&B logger also get
the numbers and images in their W&B run (same run id, never blocking without network).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from tqdm.auto import tqdm

from vae_gjs.checkpoints import check_fits, model_weights, read_checkpoint
from vae_gjs.data import InMemoryDataModule
from vae_gjs.errors import ConfigError, RunError
from vae_gjs.evaluation.evidence import bootstrap_ci, model_evidence
from vae_gjs.evaluation.images import (
    reconstruction_grid,
    samples_grid,
    save_png,
    traversal_grid,
    traversal_values,
)
from vae_gjs.evaluation.options import CONFIG_VERSION, RESULT_KEYS, load_run_config
from vae_gjs.evaluation.reconstruction import reconstruction_metrics
from vae_gjs.io import file_digest, write_json
from vae_gjs.module import VAE, build_module
from vae_gjs.rundir import COMPLETED, RunDir

log = logging.getLogger(__name__)

#: Test images shown in the reconstruction grid (rows of 10, each above its reconstructions).
RECONSTRUCTION_IMAGES = 50
#: Confidence level of the model-evidence interval (Fig. 5).
LEVEL = 0.95


# --------------------------------------------------------------------------- loading a run


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA if available, else the CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device={name} but no CUDA device is available; allowed here: auto, cpu")
        if (device.index or 0) >= count:
            raise ConfigError(
                f"device={name} but there are {count} CUDA devices; allowed: cuda:0 to cuda:{count - 1}"
            )
    return device


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
            "param_groups": {},
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
    }
    return module.eval(), info


# --------------------------------------------------------------------------- evaluating a run


def _progress(desc: str) -> Callable[[Iterable[Any], int | None], Iterable[Any]]:
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


def _done(run: RunDir, options: dict[str, Any], sha256: str) -> dict[str, Any] | None:
    """The existing eval.json if it was written with the same options and checkpoint file."""
    if not run.eval_file.is_file():
        return None
    try:
        record = json.loads(run.eval_file.read_text())
    except (OSError, ValueError):
        return None
    same = record.get("options") == options and record.get("checkpoint", {}).get("sha256") == sha256
    return record if same else None


def _split_loader(datamodule: InMemoryDataModule, split: str, batch_size: int) -> Any:
    if split not in datamodule.splits:
        raise ConfigError(
            f"splits: the run has no {split!r} split (its dataset.val_size is 0); "
            f"allowed here: {', '.join(sorted(datamodule.splits))}"
        )
    return datamodule.loader(split, batch_size)


def _figures(
    module: VAE,
    datamodule: InMemoryDataModule,
    run: RunDir,
    cfg: DictConfig,
    dims_by_kl: list[int],
    device: torch.device,
) -> dict[str, Any]:
    test = datamodule.splits["test"]
    shown = test.images.batch(torch.arange(min(RECONSTRUCTION_IMAGES, len(test)))).to(device)
    traversed = test.images.batch(torch.tensor([cfg.traversal_image])).to(device)
    generator = torch.Generator().manual_seed(cfg.seed)
    pictures = {
        "reconstructions": reconstruction_grid(module.net, shown),
        "samples": samples_grid(module.net, len(dims_by_kl), 10, generator),
        "traversals": traversal_grid(module.net, traversed, dims_by_kl, extent=cfg.traversal_range),
    }
    return {name: save_png(picture, run.figures / f"{name}.png") for name, picture in pictures.items()}


def evaluate_run(path: str | Path, cfg: DictConfig) -> dict[str, Any]:
    """Evaluate one run folder; returns the eval.json record (the existing one for a done run)."""
    started = time.perf_counter()
    run = RunDir.at(path)
    run_cfg = load_run_config(run)
    ckpt_path = run.checkpoint(cfg.checkpoint)
    options = _options(cfg)
    device = resolve_device(cfg.device)
    if not cfg.force:
        existing = _done(run, options, file_digest(ckpt_path))
        if existing is not None:
            log.info(f"Skipping {run.path}: eval.json is up to date with these options (force=true to redo)")
            return existing
    if run.status != COMPLETED:
        log.warning(
            f"{run.path}: training status is {run.status!r}, not completed; evaluating its {ckpt_path.name}"
        )
    timings: dict[str, float] = {}

    datamodule = build_datamodule(run_cfg, cfg.data_dir)
    n_test = len(datamodule.splits["test"])
    if cfg.figures and cfg.traversal_image >= n_test:  # checked before the long work, not after
        raise ConfigError(f"traversal_image={cfg.traversal_image} is not allowed; allowed: 0 to {n_test - 1}")
    module, checkpoint = load_module(run, run_cfg, cfg.checkpoint, datamodule.image_shape)
    module.to(device)
    if device.type == "cpu":
        # oneDNN's transposed convolutions run ~1.5x faster in channels-last layout on a CPU
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    timings["load"] = time.perf_counter() - started
    log.info(f"Evaluating {run.path} ({checkpoint['file']}, epoch {checkpoint['epoch']}) on {device}")

    metrics: dict[str, float] = {}
    n_images: dict[str, int] = {}
    kl_per_dim: dict[str, list[float]] = {}
    for split in cfg.splits:
        tick = time.perf_counter()
        torch.manual_seed(cfg.seed)  # divergences that sample (MMD) see the same noise on every re-run
        loader = _split_loader(datamodule, split, cfg.batch_size)
        total = len(loader) if cfg.rec_batches is None else min(cfg.rec_batches, len(loader))
        batches = itertools.islice(loader, total)
        result = reconstruction_metrics(module, batches, device, _progress(f"{split} reconstruction"), total)
        metrics.update({f"{split}/{name}": value for name, value in result.means.items()})
        n_images[split] = result.n_images
        kl_per_dim[split] = result.kl_per_dim
        timings[f"reconstruction_{split}"] = time.perf_counter() - tick
        log.info(
            f"{split}: sse={result.means['sse']:.4g} div={result.means['div']:.4g} ({result.n_images} images)"
        )

    tick = time.perf_counter()
    test_loader = _split_loader(datamodule, "test", cfg.batch_size)
    total = min(cfg.n_batches, len(test_loader))
    evidence = model_evidence(
        module.net.encode,
        module.net.decode,
        module.likelihood.log_prob,
        test_loader,
        k=cfg.k,
        n_batches=total,
        seed=cfg.seed,
        device=device,
        progress=_progress(f"log p(x), K={cfg.k}"),
    )
    ci = bootstrap_ci(evidence.batch_log_px, cfg.bootstrap, LEVEL, seed=cfg.seed)
    metrics.update(
        {
            "test/log_px": ci.mean,
            "test/log_px_ci_low": ci.low,
            "test/log_px_ci_high": ci.high,
            "test/elbo": evidence.image_mean_elbo,
        }
    )
    timings["evidence"] = time.perf_counter() - tick
    log.info(
        f"test log p(x) = {ci.mean:.4g}, 95% CI [{ci.low:.4g}, {ci.high:.4g}] ({evidence.n_images} images)"
    )

    figures: dict[str, Any] = {}
    traversal: dict[str, Any] = {}
    if cfg.figures:
        tick = time.perf_counter()
        if "test" not in kl_per_dim:  # the traversal rows are ordered by each dimension's test KL
            torch.manual_seed(cfg.seed)
            loader = _split_loader(datamodule, "test", cfg.batch_size)
            batches = itertools.islice(loader, cfg.rec_batches or len(loader))
            kl_per_dim["test"] = reconstruction_metrics(module, batches, device).kl_per_dim
        dims = sorted(range(len(kl_per_dim["test"])), key=lambda d: -kl_per_dim["test"][d])
        paths = _figures(module, datamodule, run, cfg, dims, device)
        figures = {name: str(p.relative_to(run.path)) for name, p in paths.items()}
        traversal = {
            "image_index": cfg.traversal_image,
            "dims_by_test_kl": dims,
            "values": [round(float(v), 6) for v in traversal_values(extent=cfg.traversal_range)],
            "range": "z_d set to 10 equidistant values in [-traversal_range, traversal_range] (prior N(0,1))",
        }
        timings["figures"] = time.perf_counter() - tick
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
        "metrics": metrics,
        "n_images": n_images,
        "kl_per_dim": kl_per_dim,
        "evidence": {
            "estimator": "importance sampling, proposal q(z|x), log-mean-exp of K weights",
            "likelihood": run_cfg.likelihood,
            "k": cfg.k,
            "batch_size": cfg.batch_size,
            "n_batches": len(evidence.batch_log_px),
            "n_images": evidence.n_images,
            "mean": ci.mean,
            "ci95": [ci.low, ci.high],
            "bootstrap_resamples": ci.resamples,
            "bootstrap_std_error": ci.std_error,
            "image_mean": evidence.image_mean_log_px,
            "elbo_mean": evidence.image_mean_elbo,
            "batch_log_px": evidence.batch_log_px,
            "batch_elbo": evidence.batch_elbo,
        },
        "figures": figures,
        "traversal": traversal,
        "timings_s": {name: round(seconds, 2) for name, seconds in timings.items()},
        "versions": {"torch": torch.__version__},
        "evaluated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(run.eval_file, record)
    log.info(f"Wrote {run.eval_file} in {timings['total']:.1f} s")
    log_to_wandb(run, run_cfg, metrics, {name: run.path / p for name, p in figures.items()})
    return record


# --------------------------------------------------------------------------- W&B


def log_to_wandb(
    run: RunDir, run_cfg: DictConfig, metrics: dict[str, float], figures: dict[str, Path]
) -> None:
    """Add the numbers (``eval/...``, also to the summary) and images to the run's own W&B run,
    when its config has a W&B logger. The id derives from the run folder as in training; the
    mode is the configured one (``auto`` goes offline without key or network). A failure here
    is a warning: eval.json is already written."""
    node = run_cfg.get("logger", {}).get("wandb") if isinstance(run_cfg.get("logger"), DictConfig) else None
    if node is None:
        return
    kwargs = OmegaConf.to_container(node, resolve=True)
    assert isinstance(kwargs, dict)
    kwargs.pop("_target_", None)
    kwargs["save_dir"] = str(run.path)
    try:
        from vae_gjs.loggers import wandb_logger

        logger = wandb_logger(**kwargs)
        if logger is None:
            return
        logged = {f"eval/{key}": value for key, value in metrics.items()}
        logger.log_metrics(logged)
        logger.experiment.summary.update(logged)
        for name, path in figures.items():
            logger.log_image(key=f"eval/{name}", images=[str(path)])
    except Exception as error:
        log.warning(f"W&B logging of the evaluation failed ({type(error).__name__}: {error}); see eval.json")
    finally:
        if "wandb" in sys.modules and sys.modules["wandb"].run is not None:
            sys.modules["wandb"].finish()


# --------------------------------------------------------------------------- sweeps and entry


def evaluate_sweep(folder: str | Path, cfg: DictConfig, for_report: bool = False) -> list[dict[str, Any]]:
    """Evaluate every immediate subfolder of ``folder`` that holds a config.yaml, skipping the
    done ones (unless ``force``); a failing run does not stop the others, and the failures are
    reported together at the end as one :class:`RunError`.

    ``for_report``: a run that has an eval.json is taken as it is, whatever options it was
    evaluated with (e.g. by its own training job, ``evaluate=true``), and failures are only
    logged: the report lists the runs it lacks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"sweep folder {folder} does not exist")
    runs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.yaml").is_file())
    if not runs:
        if (folder / "config.yaml").is_file():
            raise RunError(f"{folder} is a run folder, not a sweep: use run_dir={folder}")
        raise RunError(f"{folder} holds no run folders (subfolders with a config.yaml written by train.py)")
    records, failures, kept = [], [], 0
    for number, path in enumerate(runs, 1):
        if for_report and not cfg.force and RunDir.at(path).eval_file.is_file():
            kept += 1
            continue
        log.info(f"[{number}/{len(runs)}] {path.name}")
        try:
            records.append(evaluate_run(path, cfg))
        except Exception as error:
            if not isinstance(error, (RunError, ConfigError)):
                log.exception(f"{path.name} failed")
            failures.append(f"{path.name}: {error}")
            log.error(f"{path.name} failed: {error}")
    if failures and not for_report:
        raise RunError(f"{len(failures)} of {len(runs)} runs failed: " + " | ".join(failures))
    log.info(
        f"Evaluated {len(runs) - kept - len(failures)} runs in {folder}, {len(failures)} failed, {kept} kept"
    )
    return records


def evaluate(cfg: DictConfig) -> Any:
    """The task of ``evaluate.py`` (options already validated)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.report is not None:
        evaluate_sweep(cfg.sweep_dir, cfg, for_report=True)
        return write_report(cfg.report, cfg.sweep_dir)
    if cfg.sweep_dir is not None:
        return evaluate_sweep(cfg.sweep_dir, cfg)
    return evaluate_run(cfg.run_dir, cfg)


def write_report(report: str, sweep_dir: str | Path) -> list[Path]:
    """Build ``report`` (table1, fig3, fig5) from the run folders of ``sweep_dir`` into
    ``<sweep_dir>/reports/``; Table 1 is also printed."""
    from vae_gjs import reports

    records = reports.collect(sweep_dir)
    out = Path(sweep_dir) / "reports"
    if report == "table1":
        paths = list(reports.table1(records, out).values())
        print(paths[0].read_text())
    elif report == "fig3":
        paths = [reports.figure3(records, out / "fig3.png")]
    else:
        paths = [reports.figure5(records, out / "fig5.png")]
    log.info("Wrote " + ", ".join(str(p) for p in paths))
    return paths
