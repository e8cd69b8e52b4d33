"""What README.md and docs/ state that a test can check, checked: links and repository paths exist
and none leaves the repository; numbers quoted from the project's own result files, defaults
quoted from the configs and constants quoted from the code agree with their source."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF, ROOT

README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _table1_ratios(dataset: str) -> dict[str, float]:
    with (ROOT / "docs" / "figures" / f"table1_{dataset}_cpu.csv").open() as handle:
        return {row["row"]: float(row["ratio"]) for row in csv.DictReader(handle)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_and_repository_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        target = target.split("#")[0]
        if target and not target.startswith(("http://", "https://", "mailto:")):
            assert (doc.parent / target).exists(), f"{doc.name}: link to {target}"
    for path in re.findall(r"`((?:conf|src|docs|tests|benchmarks|examples)/[^`\s]+)`", text):
        path = path.rstrip(":,.").split("::")[0]
        if not any(mark in path for mark in "<*{"):
            assert (ROOT / path).exists(), f"{doc.name}: {path}"


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """The paper's text lies beside the clone on the project's machines, not in it: docs and the
    Table 1 report cite the paper (CITATION.cff), not that file."""
    shipped = [*DOCS, *(ROOT / "src").rglob("*.csv"), *(ROOT / "src").rglob("*.py"), *(CONF).rglob("*.yaml")]
    for path in shipped:
        assert "shared/paper" not in path.read_text(), path


def test_the_readmes_table1_ratios_are_the_result_files() -> None:
    """README "Reproducing the paper": the spread of ours / paper per row, as docs/figures/*.csv
    (written by the Table 1 report) has them."""
    mnist = _table1_ratios("mnist")
    others = [v for row, v in mnist.items() if row != "beta_vae"]
    assert f"the absolute errors are {min(others):.1f}–{max(others):.1f}× the paper's" in README
    assert f"(β-VAE {mnist['beta_vae']:.1f}×)" in README
    fmnist = _table1_ratios("fmnist")
    five = [v for row, v in fmnist.items() if row not in ("beta_vae", "mmd")]
    assert f"{min(five):.2f}–{max(five):.2f}× the paper's errors for five of its seven rows" in README
    assert f"(MMD {fmnist['mmd']:.2f}×, β-VAE {fmnist['beta_vae']:.2f}×)" in README


def test_the_readmes_performance_table_is_the_benchmark_results() -> None:
    results = ROOT / "benchmarks" / "results"
    after = json.loads((results / "after.json").read_text())
    one = json.loads((results / "evidence-inference-net-1-thread.json").read_text())["eval (threads=1)"]
    two = json.loads((results / "evidence-inference-net.json").read_text())["eval (threads=2)"]
    rows = {
        "training, train.py's path (MNIST, batch 64)": (after["real (threads=1)"], after["real (threads=2)"]),
        "training, bare PyTorch loop (the floor)": (
            after["bare (threads=1)"]["images_per_s"],
            after["bare (threads=2)"]["images_per_s"],
        ),
    }
    for label, (a, b) in rows.items():
        assert f"| {label} | {a:,.0f} images/s | {b:,.0f} images/s |" in README, label
    ratios = (after["ratio (threads=1)"], after["ratio (threads=2)"])
    assert f"| ratio | {ratios[0]:.2f} | {ratios[1]:.2f} |" in README
    assert f"| {one['log_px_10k_s']:.0f} s | {two['log_px_10k_s']:.0f} s |" in README
    before = (one["net_decode_log_px_10k_s"], two["net_decode_log_px_10k_s"])
    assert f"it took {before[0]:.0f} s and {before[1]:.0f} s there" in README


def test_documented_constants_are_the_codes() -> None:
    from vae_gjs.config.keys import MAY_CHANGE
    from vae_gjs.evaluation.evidence import MAX_DECODE

    evaluation = (ROOT / "docs" / "evaluation.md").read_text()
    assert f"decoded in chunks of ≤ {MAX_DECODE} codes" in evaluation
    eval_defaults = yaml.safe_load((CONF / "eval" / "default.yaml").read_text())
    assert f"K = {eval_defaults['k']} samples" in evaluation
    reliability = " ".join((ROOT / "docs" / "reliability.md").read_text().split())
    listed = reliability.split("except in keys that may change between attempts:")[1].split(
        "(`vae_gjs.config.keys"
    )[0]
    assert sorted(re.findall(r"`([^`]+)`", listed)) == sorted(
        key if key not in ("eval", "logger", "callbacks") else f"{key}.*" for key in MAY_CHANGE
    )


def test_the_readmes_config_tables_and_defaults_are_the_configs() -> None:
    train = yaml.safe_load((CONF / "train.yaml").read_text())
    defaults = {next(iter(d)): d[next(iter(d))] for d in train["defaults"] if isinstance(d, dict)}
    for group in ("dataset", "divergence", "logger", "budget", "hparams_search"):
        row = next(line for line in README.splitlines() if line.startswith(f"| `{group}/` |"))
        options = {p.stem for p in (CONF / group).glob("*.yaml")}
        named = set(re.findall(r"`(\w+)`", row.split("|")[2]))
        assert named == options, (group, named ^ options)
        assert f"`{defaults[group]}` (default" in row, group
    assert f"`images_every_n_epochs` ({train['images_every_n_epochs']})" in README
    assert f"`log_every_n_steps` ({train['log_every_n_steps']})" in README
    lr = f"{train['optim']['lr']:.0e}".replace("e-0", "e-")  # 1e-4
    assert f"`seed` ({train['seed']})" in README and f"`optim.lr` ({lr})" in README
    epochs = yaml.safe_load((CONF / "budget" / "cpu.yaml").read_text())["trainer"]["max_epochs"]
    assert f"`cpu` ({epochs} epochs)" in README
