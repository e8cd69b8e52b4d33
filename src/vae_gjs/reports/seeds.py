"""Seeds as an axis of the reports: the runs of one cell (one per seed), their mean ± sd, and
the paired difference between two cells.

A sweep over seeds (``python train.py -m ... seed=1234,1,2``) has several runs per cell. A report
summarises a cell by the mean over its seeds and the sample standard deviation (n − 1 in the
denominator). Two cells are compared **paired by seed**: runs with one seed start from the same
initial weights (``seed_everything(seed)`` before the network is built, and the regulariser adds
no random draws there) and see the same batches in the same order (``dataset.shuffle_seed`` is
the seed), so the seed is a shared block and the per-seed differences d_s remove its effect. Their
95% interval is the paired t interval, mean(d) ± t_{0.975, n−1} · sd(d) / √n (Student, 1908): exact
when the differences are normal, and the right scale for the handful of seeds a column can
afford; with one pair there is no interval, with two it is valid but wide (t_{0.975, 1} = 12.71).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vae_gjs.errors import RunError
from vae_gjs.reports.collect import RunRecord, why_unfinished
from vae_gjs.reports.text import fmt

#: Confidence level of the intervals over seeds.
LEVEL = 0.95


@dataclass(frozen=True)
class Summary:
    """The values of one cell over its seeds (NaN ones dropped): mean, sample sd and n."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        return cls(tuple(v for v in values if not math.isnan(v)))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation (n − 1 in the denominator); NaN with fewer than two values."""
        return statistics.stdev(self.values) if self.n > 1 else math.nan

    def text(self, digits: int = 2) -> str:
        """``mean ± sd (n)``; ``mean (1)`` for one value, ``—`` for none."""
        if self.n == 0:
            return "—"
        spread = f" ± {fmt(self.sd, digits)}" if self.n > 1 else ""
        return f"{fmt(self.mean, digits)}{spread} ({self.n})"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds with its two-sided ``LEVEL`` t interval (NaN bounds for n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 2) -> str:
        """``+d [low, high] (n)``, ``+d (1 pair: no interval)`` or ``—``."""
        if self.n == 0:
            return "—"
        if self.n == 1:
            return f"{self.mean:+.{digits}f} (1 pair: no interval)"
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] ({self.n})"


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean of ``values`` and its two-sided ``level`` Student t interval, mean ± t_{(1+level)/2,
    n−1} · sd / √n (NaN bounds with fewer than two values)."""
    summary = Summary.of(values)
    if summary.n < 2:
        return Interval(summary.mean, math.nan, math.nan, summary.n)
    from scipy.stats import t  # scipy only when a report has seeds to pool

    half = float(t.ppf((1 + level) / 2, summary.n - 1)) * summary.sd / math.sqrt(summary.n)
    return Interval(summary.mean, summary.mean - half, summary.mean + half, summary.n)


def paired_difference(runs: Sequence[RunRecord], reference: Sequence[RunRecord], attribute: str) -> Interval:
    """``attribute`` of ``runs`` minus that of ``reference``, paired by seed (the seeds both have,
    NaN values dropped): the mean per-seed difference and its paired t interval."""
    theirs = {run.seed: getattr(run, attribute) for run in reference}
    differences = [getattr(run, attribute) - theirs[run.seed] for run in runs if run.seed in theirs]
    return t_interval([d for d in differences if not math.isnan(d)])


def several_seeds(records: Iterable[RunRecord]) -> bool:
    """Whether the runs have more than one seed between them (a report then shows seeds)."""
    return len({record.seed for record in records}) > 1


def one_per_seed(runs: Sequence[RunRecord], what: str, advice: str) -> list[RunRecord]:
    """``runs`` (the finished runs of one cell, e.g. ``kl_qp`` or ``gjs α=0.2``) sorted by seed,
    or a one-line :class:`RunError` naming two runs of one seed: they would be counted twice."""
    by_seed: dict[int | None, list[RunRecord]] = {}
    for run in runs:
        by_seed.setdefault(run.seed, []).append(run)
    for seed, same in by_seed.items():
        if len(same) > 1:
            names = ", ".join(run.path.name for run in same)
            raise RunError(f"{len(same)} finished {what} runs with seed {seed} ({names}); {advice}")
    return sorted(runs, key=lambda run: seed_order(run.seed))


def seed_order(seed: int | None) -> tuple[int, int]:
    """A sort key for seeds (ints, or None for a run folder that records none: last)."""
    return (0, seed) if seed is not None else (1, 0)


def missing_cells(records: Sequence[RunRecord], cells: Sequence[tuple[str, str, float | None]]) -> list[str]:
    """Why each expected cell, ``(label, divergence, α or None)``, has no finished run at each
    seed of ``records`` (the seed named only when there are several; ``(every seed)`` when all
    lack it for one reason): ``no run folder``, or how far its run got or what keeps its
    evaluation out (:func:`~vae_gjs.reports.collect.why_unfinished`)."""
    named = several_seeds(records)
    seeds = sorted({r.seed for r in records}, key=seed_order) if named else [None]
    missing = []
    for label, divergence, alpha in cells:
        reasons = {}
        for seed in seeds:
            match = [
                r
                for r in records
                if r.divergence == divergence
                and (alpha is None or math.isclose(r.alpha, alpha))
                and (not named or r.seed == seed)
            ]
            if not match:
                reasons[seed] = "no run folder"
            elif not match[0].finished:
                reasons[seed] = why_unfinished(match[0])
        if named and len(reasons) == len(seeds) > 1 and len(set(reasons.values())) == 1:
            missing.append(f"{label} (every seed): {reasons[seeds[0]]}")
        else:
            missing += [f"{label}{f' seed {seed}' if named else ''}: {why}" for seed, why in reasons.items()]
    return missing
