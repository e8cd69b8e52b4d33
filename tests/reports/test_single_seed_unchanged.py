"""One seed per cell keeps every report byte for byte as it was before seeds became an axis.

``golden/`` holds the files that the reports of commit b5169b8 (before seeds) wrote from the
synthetic single-seed sweeps of ``test_reports.py`` and ``test_learned_alpha_report.py``: the
text files themselves, and the SHA-256 of each PNG (matplotlib 3.11.2, Agg) in ``png.json``. They
were written once with ``VAE_GJS_WRITE_GOLDEN=1`` by that code; do not rewrite them to make a
change pass. Rewritten once since, for one deliberate line: the source of the paper's numbers
(``Transcribed from the paper's Table 1 (NeurIPS 2020 proceedings; citation: CITATION.cff)``
instead of a path outside the repository) in table1.md and likelihood.md; nothing else changed.
And once for one deliberate picture change: fig3.png's digest, when Figure 3 drew JS*^{Gα} in
orange (Figure 5's colour; it was blue like JS^{Gα}) and listed the two families first.
And once for one deliberate line of table1.md: a missing run that is not completed says how far
it got (``beta_vae: status failed, 0 epochs trained``, the synthetic run has no metrics.csv)
instead of ``status failed, evaluated=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.reports.test_learned_alpha_report import make_sweeps
from tests.reports.test_reports import make_likelihood_sweeps, make_sweep
from vae_gjs.reports import write_report

GOLDEN = Path(__file__).parent / "golden"


def single_seed_reports(folder: Path) -> dict[str, bytes]:
    """Every report of the single-seed synthetic sweeps, built in ``folder`` (the working
    directory, so that the paths the reports print are the same everywhere): name -> bytes."""
    make_sweep(Path("table1"))
    learned, fixed = make_sweeps(Path("learned"))
    likelihood, baselines = make_likelihood_sweeps(Path("likelihood"))
    paths = [
        *write_report("table1", "table1"),
        *write_report("fig3", "table1"),
        *write_report("fig5", "table1"),
        *write_report("learned_alpha", learned, table1_dir=fixed),
        *write_report("likelihood", likelihood, table1_dir=baselines),
    ]
    return {path.name: (folder / path).read_bytes() for path in paths}


def test_one_seed_per_cell_writes_the_same_bytes_as_before_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    written = single_seed_reports(tmp_path)
    pngs = {name for name in written if name.endswith(".png")}
    digests = {name: hashlib.sha256(written[name]).hexdigest() for name in pngs}
    texts = {name: data for name, data in written.items() if name not in pngs}
    if os.environ.get("VAE_GJS_WRITE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for name, data in texts.items():
            (GOLDEN / name).write_bytes(data)
        (GOLDEN / "png.json").write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    assert sorted(written) == sorted([*json.loads((GOLDEN / "png.json").read_text()), *texts])
    for name, data in texts.items():
        assert data == (GOLDEN / name).read_bytes(), name
    assert digests == json.loads((GOLDEN / "png.json").read_text())
