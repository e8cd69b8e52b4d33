"""Read the runs of a sweep folder into flat records: what was run and what it measured."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vae_gjs.config.keys import ADDED, REGULARISER, SKEW, under
from vae_gjs.config.runtime import run_setting, setting_text
from vae_gjs.errors import RunError
from vae_gjs.rundir import COMPLETED, FAILED, RUNNING, RunDir, read_json, read_metrics, run_folders
from vae_gjs.runlock import holder

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
    #: The run's ``seed`` (None when its config.yaml records none).
    seed: int | None = None
    #: Training batch size (``dataset.batch_size``).
    batch_size: int | None = None
    #: How long it was set to train: ``trainer.max_epochs`` and ``trainer.max_steps`` (−1: no limit).
    max_epochs: int | None = None
    max_steps: int | None = None
    #: Whether α was trained (``learn_alpha=true``).
    learn_alpha: bool = False
    #: The arithmetic it trained and was evaluated in (``precision``: fp32 or bf16).
    precision: str = "fp32"
    #: Why the run's eval.json is not used (corrupt, or a measurement of other weights than the
    #: run holds now); empty when it is used or absent.
    problem: str = ""
    #: What it was trained with besides its seed: :func:`run_setting` of its config.yaml.
    setting: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status == COMPLETED and self.evaluated

    @property
    def training(self) -> str:
        """The training length it was set to, e.g. ``18 epochs`` or ``18 epochs, 4 steps``."""
        steps = f", {self.max_steps} steps" if self.max_steps not in (None, -1) else ""
        return f"{self.max_epochs} epochs{steps}"

    def evidence(self, likelihood: str | None = None) -> tuple[float, tuple[float, float]]:
        """log p(x) and its 95% CI under ``likelihood`` (None: the headline one); NaN if the run
        was not evaluated under it."""
        if likelihood is None or likelihood == self.evidence_likelihood:
            return self.log_px, self.log_px_ci
        mean, low, high = self.log_px_by_likelihood.get(likelihood, (NAN, NAN, NAN))
        return mean, (low, high)


def _evaluation(run: RunDir) -> tuple[dict[str, Any], str]:
    """The run's eval.json record if a report may use it, else ``{}`` and why not: it is corrupt
    (the same rule as evaluate.py's: as if absent), a live process is training the run, or it
    measured other weights than the run holds now."""
    try:
        evaluation = read_json(run.eval_file)
    except RunError:
        return {}, "eval.json is corrupt"
    if not evaluation:
        return {}, ""
    pid = holder(run.path)
    problem = f"still training (pid {pid})" if pid is not None else run.stale_evaluation(evaluation)
    return ({}, problem) if problem else (evaluation, "")


def read_run(path: Path) -> RunRecord:
    """The record of one run folder (missing measurements are NaN)."""
    run = RunDir.at(path)
    config = run.load_config()
    cfg = OmegaConf.to_container(config, resolve=True)
    assert isinstance(cfg, dict)
    choices = cfg.get("choices", {})
    evaluation, problem = _evaluation(run)
    metrics = evaluation.get("metrics", {})
    results = run.results
    divergence = cfg.get("divergence", {})
    trainer = cfg.get("trainer", {})
    return RunRecord(
        path=path,
        dataset=str(choices.get("dataset", "?")),
        divergence=str(choices.get("divergence", "?")),
        alpha=float(divergence.get("alpha", NAN)),
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
        seed=cfg.get("seed"),
        batch_size=cfg.get("dataset", {}).get("batch_size"),
        max_epochs=trainer.get("max_epochs"),
        max_steps=trainer.get("max_steps"),
        learn_alpha=bool(divergence.get("learn_alpha", cfg.get("learn_alpha", False))),
        precision=str(cfg.get("precision", "fp32")),
        problem=problem,
        setting=run_setting(cfg),
    )


def collect(sweep_dir: str | Path) -> list[RunRecord]:
    """The records of every run in ``sweep_dir``, sorted by divergence, α, then seed. A run with a
    corrupt config.yaml, status.json or results.json is skipped and listed (one warning line
    each), the others are read; a corrupt eval.json leaves its run not evaluated."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep folder {sweep_dir} does not exist")
    records, skipped = [], []
    for path in run_folders(sweep_dir):
        try:
            records.append(read_run(path))
        except RunError as error:
            skipped.append(path.name)
            log.warning(f"Skipping {path.name}: {error}")
    if skipped:
        log.warning(f"Skipped {len(skipped)} run(s) with corrupt files: {', '.join(skipped)}")
    return sorted(
        records, key=lambda r: (r.divergence, -1.0 if math.isnan(r.alpha) else r.alpha, r.seed or 0)
    )


def epoch_columns(record: RunRecord, columns: Sequence[str]) -> dict[str, tuple[list[int], list[float]]]:
    """Each of ``columns`` of the run's metrics.csv (read once) against epochs trained (epoch e's
    row is logged at the epoch's end: after e + 1 epochs); rows without a value skipped, nothing
    without the file."""
    path = record.path / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    series = {}
    for column in columns:
        points = [(int(r["epoch"]) + 1, r[column]) for r in rows if not math.isnan(r.get(column, NAN))]
        series[column] = ([e for e, _ in points], [v for _, v in points])
    return series


def epoch_series(record: RunRecord, column: str) -> tuple[list[int], list[float]]:
    """One column of :func:`epoch_columns`."""
    return epoch_columns(record, [column])[column]


def why_unfinished(record: RunRecord) -> str:
    """Why a report has no place for the run yet: how far a run that is not completed got
    (``status running, 37 of 100 epochs trained``: the epochs of its metrics.csv) and, for a
    ``running`` one, whether a live process trains it (``pid 812``) or none does (cut off: the
    same command resumes it), for a ``failed`` one its error (``status.json``); or what keeps a
    completed run's evaluation out (:attr:`RunRecord.problem`, else ``not evaluated``)."""
    if record.status == COMPLETED:
        return f"status {COMPLETED}, {record.problem or 'not evaluated'}"
    epochs = len(epoch_series(record, "train/rec")[0])
    of = f" of {record.max_epochs}" if record.max_epochs is not None else ""
    why = f"status {record.status}, {epochs}{of} epochs trained"
    if record.status == RUNNING:
        pid = holder(record.path)
        why += f", training (pid {pid})" if pid is not None else ", no process trains it"
    error = RunDir.at(record.path).error if record.status == FAILED else None
    return why + (f" ({' '.join(str(error).split())})" if error else "")


#: What runs shown together must share: RunRecord attribute -> its name in an error (plural).
SETTINGS = {
    "dataset": "datasets",
    "batch_size": "batch sizes",
    "training": "training lengths",
    "likelihood": "training likelihoods",
}


def refuse_mixed(records: Sequence[RunRecord], report: str, attributes: Sequence[str]) -> None:
    """A one-line :class:`RunError` when ``records`` differ in one of ``attributes`` (keys of
    :data:`SETTINGS`), naming each value with its runs: a figure or table of MNIST and
    Fashion-MNIST runs, or of two batch sizes, would draw them as one series."""
    for attribute in attributes:
        groups: dict[str, list[str]] = {}
        for record in records:
            groups.setdefault(str(getattr(record, attribute)), []).append(record.path.name)
        if len(groups) > 1:
            hint = " (report=likelihood compares training losses)" if attribute == "likelihood" else ""
            raise RunError(
                f"report={report} refuses to join runs of different {SETTINGS[attribute]}: "
                + _described(groups)
                + f"; give it the runs of one (a sweep folder each){hint}"
            )


def _described(groups: dict[str, list[str]]) -> str:
    """Each value with how many runs have it and the first two of them, the commonest first."""
    return "; ".join(
        f"{value} ({len(names)} run{'s' if len(names) > 1 else ''}: "
        + ", ".join(names[:2])
        + (", …" if len(names) > 2 else "")
        + ")"
        for value, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    )


def _series(record: RunRecord) -> str:
    """The series a run belongs to, in words: ``gjs runs (gaussian likelihood)``, ``(…, learned α)``."""
    learned = ", learned α" if record.learn_alpha else ""
    return f"{record.divergence} runs ({record.likelihood} likelihood{learned})"


def _refuse_different(
    records: Sequence[RunRecord], report: str, what: str, keys: Callable[[str], bool]
) -> None:
    """:func:`refuse_mixed_settings` for one set of runs and the setting keys that ``keys`` picks."""
    for key in sorted({key for record in records for key in record.setting if keys(key)}):
        groups: dict[str, list[str]] = {}
        for record in records:  # a key an older version did not write is not compared
            if key in record.setting or not under(key, ADDED):
                value = setting_text(record.setting.get(key, "<absent>"))
                groups.setdefault(value, []).append(record.path.name)
        if len(groups) > 1:
            raise RunError(
                f"report={report} refuses to join {what} trained with different {key}: {_described(groups)}; "
                "give it the runs of one setting (a sweep folder each)"
            )


def refuse_mixed_settings(records: Sequence[RunRecord], report: str, along: tuple[str, ...] = SKEW) -> None:
    """A one-line :class:`RunError` when ``records`` were trained differently in something that is
    neither their regulariser nor their seed (:attr:`RunRecord.setting`): the runs of a report
    agree on every key outside the regulariser (another learning rate or latent size is another
    experiment), and the runs of one series (one divergence, training loss and ``learn_alpha``)
    on the regulariser too, α aside (``divergence.prime=false`` or a second λ of β-VAE is another
    series, not more seeds or α of this one). A mean over such runs, a row's choice of α among
    them or a difference between rows would be a wrong number. ``along``: the regulariser's keys a
    series runs over (α; the likelihood report's hypotheses are also a scale of λ)."""
    _refuse_different(records, report, "runs", lambda key: not under(key, REGULARISER))
    series: dict[str, list[RunRecord]] = {}
    for record in records:
        series.setdefault(_series(record), []).append(record)
    for what, runs in series.items():
        _refuse_different(runs, report, what, lambda key: under(key, REGULARISER) and not under(key, along))
