"""Write a report of a sweep into ``<sweep_dir>/reports/``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from vae_gjs.config.keys import SKEW
from vae_gjs.reports.collect import RunRecord, collect, refuse_mixed, refuse_mixed_settings
from vae_gjs.reports.curves import training_curves
from vae_gjs.reports.figures import figure3, figure5
from vae_gjs.reports.learned_alpha import learned_alpha, learned_runs
from vae_gjs.reports.likelihood import likelihood_report
from vae_gjs.reports.publish import publish
from vae_gjs.reports.table1 import table1
from vae_gjs.rundir import read_plan

log = logging.getLogger(__name__)


def _printed(paths: dict[str, Path]) -> list[Path]:
    """The files of a table report; the first, the Markdown table, is also printed."""
    files = list(paths.values())
    print(files[0].read_text())
    return files


#: What the runs of each report (:data:`vae_gjs.config.REPORTS`) must share to be shown together
#: (:func:`~vae_gjs.reports.collect.refuse_mixed`): a table or a figure's series of one dataset,
#: batch size, training length and, for the figures, training likelihood (Table 1 shows one table
#: per training loss, the likelihood and learned-α reports compare them; the training curves take
#: runs of any length, one row of panels per training loss).
SHARED: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("fig3", "fig4", "fig5"), ("dataset", "batch_size", "training", "likelihood")),
    **dict.fromkeys(("table1", "learned_alpha", "likelihood"), ("dataset", "batch_size", "training")),
    "curves": ("dataset", "batch_size"),
}

#: The regulariser's keys along which the runs of one series may differ, where a report has more
#: than α (:func:`~vae_gjs.reports.collect.refuse_mixed_settings`): the likelihood report's
#: hypotheses are a training loss and a scale of λ (SSE against 255·SSE).
ALONG: dict[str, tuple[str, ...]] = {"likelihood": (*SKEW, "lam", "module.lam")}


def check_report(report: str, sweep_dir: str | Path) -> list[RunRecord]:
    """The records of ``sweep_dir`` if ``report`` can be made of them, else a one-line
    :class:`~vae_gjs.errors.RunError` saying what does not belong together: runs of different
    datasets, batch sizes, training lengths or likelihoods (:data:`SHARED`), or, for
    ``learned_alpha``, no run that learned α; runs trained differently in anything but their
    regulariser and seed, or runs of one divergence differing in the regulariser beyond α
    (:func:`~vae_gjs.reports.collect.refuse_mixed_settings`). Reads the run folders only, so it
    answers before any run is evaluated."""
    records = collect(sweep_dir)
    refuse_mixed(records, report, SHARED[report])
    refuse_mixed_settings(records, report, ALONG.get(report, SKEW))
    if report == "learned_alpha":
        learned_runs(records, sweep_dir)
    return records


#: The writer of each report name in :data:`vae_gjs.config.REPORTS`.
WRITERS: dict[str, Callable[[list[RunRecord], Path], list[Path]]] = {
    # out is <sweep_dir>/reports: Table 1 lists the runs the sweep folder's plan lacks
    "table1": lambda records, out: _printed(table1(records, out, plan=read_plan(out.parent))),
    "fig3": lambda records, out: [figure3(records, out / "fig3.png")],
    "fig5": lambda records, out: [figure5(records, out / "fig5.png")],
    "learned_alpha": lambda records, out: _printed(learned_alpha(records, out)),
    "likelihood": lambda records, out: _printed(likelihood_report(records, out)),
    "curves": lambda records, out: [training_curves(records, out / "curves.png")],
}


def write_report(
    report: str,
    sweep_dir: str | Path,
    evidence_likelihoods: Sequence[str] = (),
    table1_dir: str | Path | None = None,
) -> list[Path]:
    """Build ``report`` (table1: Markdown, CSV and LaTeX, also printed; fig3, fig5, curves: PNG;
    learned_alpha: Markdown and CSV, also printed, and PNG; likelihood: Markdown and CSV, also
    printed) from the run folders of ``sweep_dir``
    into ``<sweep_dir>/reports/``, and into the sweep's W&B group when its runs logged to W&B
    (:func:`~vae_gjs.reports.publish.publish`); returns the files written.
    ``evidence_likelihoods``: Figure 5 under each of these decoder likelihoods (``fig5_<name>.png``
    each) instead of each run's headline evidence. ``table1_dir``: the fixed-α sweep whose best α the
    learned_alpha report shows alongside, or whose baseline runs the likelihood report adds.
    Figure 4 needs the models: :mod:`vae_gjs.tasks.evaluate`."""
    records, out = check_report(report, sweep_dir), Path(sweep_dir) / "reports"
    if report == "fig5" and evidence_likelihoods:
        paths = [figure5(records, out / f"fig5_{name}.png", likelihood=name) for name in evidence_likelihoods]
    elif report == "learned_alpha" and table1_dir is not None:
        paths = _printed(learned_alpha(records, out, table1_dir))
    elif report == "likelihood" and table1_dir is not None:
        paths = _printed(likelihood_report(records, out, table1_dir))
    else:
        paths = WRITERS[report](records, out)
    log.info("Wrote " + ", ".join(str(p) for p in paths))
    publish(report, sweep_dir, paths)
    return paths
