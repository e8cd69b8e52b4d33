"""Reports built from run folders (no W&B access): Table 1, Figures 3, 4 and 5, learned α."""

from vae_gjs.reports.collect import RunRecord, collect
from vae_gjs.reports.figures import figure3, figure4, figure4_runs, figure5
from vae_gjs.reports.learned_alpha import learned_alpha
from vae_gjs.reports.table1 import PaperTable, table1
from vae_gjs.reports.write import WRITERS, check_report, write_report

__all__ = [
    "WRITERS",
    "PaperTable",
    "RunRecord",
    "check_report",
    "collect",
    "figure3",
    "figure4",
    "figure4_runs",
    "figure5",
    "learned_alpha",
    "table1",
    "write_report",
]
