"""A package others can install: the wheel (configs shipped as ``vae_gjs.conf``, the type marker,
the entry points) installed into a fresh venv trains and evaluates from outside the source tree;
the declared dependency ranges, the exact set in constraints.txt, environment.yml, the Makefile,
LICENSE, CITATION.cff and the CHANGELOG agree with each other.

The wheel test installs only the wheel (``--no-deps``) into a venv that sees the running
environment's heavy dependencies through a ``.pth`` file (installing torch would take minutes);
it runs in the ordinary suite (``make test``, CI) in about 30 s."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import vae_gjs
from tests.conftest import DATA_DIR, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: What a wheel is built from (the rest of the clone is not shipped).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "src", "conf")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(arg) for arg in args]
    print("$", " ".join(command), f"  (in {cwd})")
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    print(
        "\n".join([*result.stdout.splitlines()[-3:], *result.stderr.splitlines()[-3:]]),
        f"\n-> exit {result.returncode}",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def build_wheel(to: Path) -> Path:
    """The project's wheel, built offline from a copy of its build inputs (the clone stays clean)."""
    source = to / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    source.mkdir(parents=True)
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = to / "dist"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        dist,
        source,
        cwd=to,
    )
    (wheel,) = dist.glob("vae_gjs-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_in_a_fresh_venv_trains_and_evaluates_from_its_entry_points(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "vae_gjs/conf/train.yaml",
        "vae_gjs/conf/evaluate.yaml",
        "vae_gjs/conf/divergence/gjs.yaml",
    } <= set(names)
    assert {
        "vae_gjs/py.typed",
        "vae_gjs/reports/paper_table1.csv",
        "hydra_plugins/vae_gjs_sweeper/sweeper.py",
    } <= set(names)
    entry_points = (
        zipfile.ZipFile(wheel).read(f"vae_gjs-{vae_gjs.__version__}.dist-info/entry_points.txt").decode()
    )
    assert "vae-gjs-train = vae_gjs.cli:train_main" in entry_points

    venv = tmp_path / "fresh"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=tmp_path,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "heavy-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"  # outside the source tree, nothing of the clone on the path
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(VAE_GJS_DATA_DIR=str(DATA_DIR), WANDB_MODE="offline")
    where = _run(python, "-c", "import vae_gjs; print(vae_gjs.__file__)", cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    tiny = [
        "trainer.max_steps=3",
        "trainer.limit_test_batches=1",
        "logger=csv",
        "threads=1",
        "images_every_n_epochs=null",
    ]
    _run(venv / "bin" / "vae-gjs-train", *tiny, cwd=work, env=env)
    (run,) = (work / "outputs" / "mnist-gjs-a0.5").iterdir()
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 3 and results["provenance"]["versions"]["vae-gjs"] == vae_gjs.__version__
    quick = ["k=2", "n_batches=2", "batch_size=50", "rec_batches=1", "bootstrap=20", "threads=1"]
    _run(venv / "bin" / "vae-gjs-evaluate", f"run_dir={run}", *quick, cwd=work, env=env)
    assert json.loads((run / "eval.json").read_text())["metrics"]["test/log_px"] < 0
    assert (run / "figures" / "traversals.png").is_file()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_exact_set_satisfies_the_declared_ranges_and_make_installs_with_it() -> None:
    pins = _pins()
    declared = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["dev"]]
    for text in declared:
        requirement = Requirement(text)
        name = requirement.name.lower()
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (text, pins[name])
        assert requirement.specifier, f"{text}: give a range"
    makefile = (ROOT / "Makefile").read_text()
    assert (
        '-c constraints.txt -e ".[dev]"' in makefile
        and "$(STAMP): pyproject.toml constraints.txt" in makefile
    )


def test_environment_yml_creates_the_same_environment() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert Requirement(f"python{PYPROJECT['project']['requires-python']}").specifier.contains(
        python.split("=")[1] + ".0"
    )
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert pip == ["-c constraints.txt", "-e .[dev]"]  # pip reads -c relative to the environment file


def test_license_citation_changelog_and_version_agree() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == PYPROJECT["project"]["version"] == vae_gjs.__version__
    assert citation["license"] == "MIT" and citation["cff-version"] == "1.2.0"
    paper = ROOT.parent / "shared" / "paper" / "deasy2020-geometric-js-vae.md"
    title = citation["preferred-citation"]["title"]
    assert title == "Constraining Variational Inference with Geometric Jensen-Shannon Divergence"
    if paper.is_file():
        assert f"# {title}" in paper.read_text()
    assert [a["family-names"] for a in citation["preferred-citation"]["authors"]] == [
        "Deasy",
        "Simidjievski",
        "Liò",
    ]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog and f"## [{vae_gjs.__version__}]" in changelog
    assert (ROOT / "src" / "vae_gjs" / "py.typed").is_file()
    assert (
        re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
        == vae_gjs.__version__
    )
