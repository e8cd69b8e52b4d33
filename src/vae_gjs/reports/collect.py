"""Read the runs of a sweep folder into flat records: what was run and what it measured."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vae_gjs.errors import RunError
from vae_gjs.rundir import COMPLETED, RunDir, read_json, run_folders

NAN = math.nan
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRecord:
    """One run of a sweep. ``alpha`` is the divergence's skew α (NaN for a divergence without
    one; the start with ``learn_alpha=true``) and ``alpha_learned`` the trained α that was
    evaluated (eval.json, else results.json; NaN when α was not learned); errors are per-image
    SSE with z = μ (Table 1's metric); ``log_px`` is the importance-sampled test log-evidence
    with its 95% bootstrap CI."""

    path: Path
    dataset: str
    divergence: str
    alpha: float
    lam: float
    budget: str
    status: str
    epochs: int | None
    evaluated: bool
    train_sse: float = NAN
    test_sse: float = NAN
    train_div: float = NAN
    test_div: float = NAN
    log_px: float = NAN
    log_px_ci: tuple[float, float] = (NAN, NAN)
    #: The decoder likelihood of ``log_px`` (eval.json's headline evidence).
    evidence_likelihood: str = "?"
    #: log p(x) under each likelihood the run was evaluated with: name -> (mean, CI low, CI high).
    log_px_by_likelihood: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    alpha_learned: float = NAN
    #: The training likelihood (config.yaml's ``likelihood``: gaussian, i.e. SSE, or bernoulli).
    likelihood: str = "gaussian"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == COMPLETED and self.evaluated

    def evidence(self, likelihood: str | None = None) -> tuple[float, tuple[float, float]]:
        """log p(x) and its 95% CI under ``likelihood`` (None: the headline one); NaN if the run
        was not evaluated under it."""
        if likelihood is None or likelihood == self.evidence_likelihood:
            return self.log_px, self.log_px_ci
        mean, low, high = self.log_px_by_likelihood.get(likelihood, (NAN, NAN, NAN))
        return mean, (low, high)


def read_run(path: Path) -> RunRecord:
    """The record of one run folder (missing measurements are NaN)."""
    run = RunDir.at(path)
    cfg = OmegaConf.to_container(run.load_config(), resolve=False)
    assert isinstance(cfg, dict)
    choices = cfg.get("choices", {})
    evaluation = read_json(run.eval_file)
    metrics = evaluation.get("metrics", {})
    results = run.results
    return RunRecord(
        path=path,
        dataset=str(choices.get("dataset", "?")),
        divergence=str(choices.get("divergence", "?")),
        alpha=float(cfg.get("divergence", {}).get("alpha", NAN)),
        lam=float(cfg.get("lam", NAN)),
        budget=str(choices.get("budget", "?")),
        status=run.status or "unknown",
        epochs=results.get("epochs"),
        evaluated=bool(metrics),
        train_sse=metrics.get("train/sse", NAN),
        test_sse=metrics.get("test/sse", results.get("test/rec", NAN)),
        train_div=metrics.get("train/div", NAN),
        test_div=metrics.get("test/div", results.get("test/div", NAN)),
        log_px=metrics.get("test/log_px", NAN),
        log_px_ci=(metrics.get("test/log_px_ci_low", NAN), metrics.get("test/log_px_ci_high", NAN)),
        evidence_likelihood=str(evaluation.get("evidence", {}).get("likelihood", "?")),
        log_px_by_likelihood={
            name: (entry["mean"], *entry["ci95"])
            for name, entry in evaluation.get("evidence_by_likelihood", {}).items()
        },
        alpha_learned=evaluation.get("learned", {}).get("alpha", results.get("alpha_learned", NAN)),
        likelihood=str(cfg.get("likelihood", "gaussian")),
    )


def collect(sweep_dir: str | Path) -> list[RunRecord]:
    """The records of every run in ``sweep_dir``, sorted by divergence then α. A run with a corrupt
    file is skipped and listed (one warning line each), the others are read."""
    records, skipped = [], []
    for path in run_folders(sweep_dir):
        try:
            records.append(read_run(path))
        except RunError as error:
            skipped.append(path.name)
            log.warning(f"Skipping {path.name}: {error}")
    if skipped:
        log.warning(f"Skipped {len(skipped)} run(s) with corrupt files: {', '.join(skipped)}")
    return sorted(records, key=lambda r: (r.divergence, r.alpha))
