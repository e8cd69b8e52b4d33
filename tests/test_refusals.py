"""A command that is refused is refused at once and leaves nothing behind: a sweep checks every
job's config before the first one starts (whatever the launcher), an ``alpha`` sweep over a
divergence without a skew is refused, and a refused single run leaves no run folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run_script
from vae_gjs.rundir import remove_if_unused

TRAIN = str(ROOT / "train.py")
LAUNCHERS = ("basic", "joblib", "cpu_pair", "fused", "submitit_local")


def _refused(tmp_path: Path, *args: str) -> list[str]:
    """Run ``train.py args`` in the empty folder ``tmp_path``; it must fail without a traceback
    and write nothing. Returns its lines on stderr."""
    result = run_script(TRAIN, *args, cwd=tmp_path, timeout=120)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir()), sorted(str(p) for p in tmp_path.rglob("*"))
    return result.stderr.splitlines()


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_sweep_with_a_bad_point_is_refused_before_any_job_whatever_the_launcher(
    tmp_path: Path, launcher: str
) -> None:
    lines = _refused(tmp_path, "-m", "divergence=gjs", "alpha=0.2,1.5", f"hydra/launcher={launcher}")
    assert lines[0] == "Error: this sweep of 2 jobs is refused; nothing was run:"
    allowed = "allowed: a real number with 0 <= alpha <= 1"
    assert lines[1] == f"  divergence=gjs alpha=1.5: alpha=1.5 is outside [0, 1]; {allowed}"
    assert len(lines) == 2  # the good point alpha=0.2 is not listed


def test_every_bad_point_of_a_grid_is_named_on_its_own_line(tmp_path: Path) -> None:
    lines = _refused(tmp_path, "-m", "divergence=gjs", "alpha=0.1,1.5", "lam=1,-2")
    assert lines[0] == "Error: this sweep of 4 jobs is refused; nothing was run:"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == [
        "divergence=gjs alpha=0.1 lam=-2",
        "divergence=gjs alpha=1.5 lam=-2",
        "divergence=gjs alpha=1.5 lam=1",
    ]


@pytest.mark.parametrize(
    ("args", "jobs"),
    [
        (("alpha=range(0.1,1,0.1)", "divergence=kl_qp"), 9),
        (("divergence=kl_qp,gjs", "alpha=0.1,0.5"), 4),
        (("divergence=mmd", "alpha=0.2,0.4"), 2),
    ],
)
def test_an_alpha_sweep_over_a_divergence_without_a_skew_is_refused_in_one_line(
    tmp_path: Path, args: tuple[str, ...], jobs: int
) -> None:
    lines = _refused(tmp_path, "-m", *args)
    assert lines[0] == f"Error: this sweep of {jobs} jobs is refused; nothing was run:"
    (line,) = lines[1:]
    assert "has no skew α, so these" in line and "sweep alpha with divergence=gjs or divergence=dgjs" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alpha=1.5",), "Error: alpha=1.5 is outside [0, 1]"),
        (("+optim.lrr=0.1",), "Error: +optim.lrr is not a key of this config (did you mean optim.lr?)"),
        # refused after Lightning loads, once Hydra has made the run folder: it is removed again
        (
            ("+trainer.max_epoch=3", "logger=csv"),
            "Error: trainer.max_epoch is not a lightning.Trainer argument",
        ),
        # refused by Lightning's Trainer, after the W&B logger (the default) stored its run id
        (("+trainer.strategy=nonsense",), "Error: trainer: You selected an invalid strategy name"),
    ],
)
def test_a_refused_single_run_leaves_no_run_folder(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (line,) = _refused(tmp_path, *args)
    assert line.startswith(message)


def test_a_refusal_in_a_folder_that_holds_a_run_keeps_the_folder(tmp_path: Path) -> None:
    run = tmp_path / "outputs" / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "config.yaml").write_text("config_version: 1\n")
    result = run_script(TRAIN, "alpha=1.5", f"hydra.run.dir={run}", cwd=tmp_path, timeout=120)
    assert result.returncode == 1 and (run / "config.yaml").is_file()


def test_only_a_folder_of_hydra_records_inside_the_working_directory_is_removed(tmp_path: Path) -> None:
    def hydra_folder(path: Path) -> Path:
        (path / ".hydra").mkdir(parents=True)
        (path / ".hydra" / "config.yaml").write_text("{}")
        (path / "train.log").write_text("")
        return path

    also = {"train.log", ".lock"}
    work = tmp_path / "work"
    kept = hydra_folder(work / "outputs" / "a" / "t1")
    removed = hydra_folder(work / "outputs" / "b" / "t2")
    assert remove_if_unused(removed, also, work)
    assert not (work / "outputs" / "b").exists() and kept.is_dir()  # an emptied parent goes too
    (kept / "metrics.csv").write_text("epoch\n")
    assert not remove_if_unused(kept, also, work) and kept.is_dir()  # the folder holds a run's file
    outside = hydra_folder(tmp_path / "elsewhere")
    assert not remove_if_unused(outside, also, work) and outside.is_dir()
    assert not remove_if_unused(work, also, work) and work.is_dir()  # never the working directory
