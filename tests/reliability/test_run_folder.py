"""The run folder: one process at a time (a lock that dies with its process), a resume only with
the config the weights were trained with, a full or read-only disk named in one line, and corrupt
files named in one line (reports and sweeps skip the run and go on). See docs/reliability.md."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import DATA_DIR, ROOT, TINY, compose_train, train_tiny
from tests.reliability.helpers import cli, one_line_error, small_disk, train_error
from vae_gjs.errors import RunError, StorageError
from vae_gjs.rundir import RunDir, read_metrics
from vae_gjs.runlock import RunLock

pytestmark = pytest.mark.slow


#: The divergence of conftest's ``tiny_run``, which a resume of its copies must name.
TINY_RUN = "divergence=kl_qp"


def _unfinished(finished: Path, folder: Path) -> Path:
    """A copy of a finished tiny run that looks killed: status running, no results."""
    shutil.copytree(finished, folder)
    (folder / "status.json").write_text('{"status": "running", "pid": 999999}')
    (folder / "results.json").unlink()
    return folder


# ------------------------------------------------------------------------------------ the lock


def test_a_second_process_in_a_run_folder_is_refused_and_a_stale_lock_taken_over(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _unfinished(tiny_run, tmp_path / "run")
    hold = (
        f"from vae_gjs.runlock import RunLock; import time; RunLock({str(folder)!r}).acquire(); "
        "print('LOCKED', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(  # another train.py, as far as the lock can tell
        [sys.executable, "-c", hold], cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"LOCKED\n"
        before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        message = train_error([TINY_RUN], folder, monkeypatch)
        assert message == (
            f"Error: {folder} is in use by another process (pid {holder.pid}) training in it; wait for it "
            f"to end, stop it (kill {holder.pid}), or use another folder (hydra.run.dir=...)"
        )
        assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # untouched
        os.kill(holder.pid, signal.SIGKILL)  # the lock dies with its process ...
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
    assert (folder / ".lock").read_text().strip() == str(holder.pid)  # ... and stays as a stale file
    train_tiny(folder, [TINY_RUN, "threads=1", "trainer.max_steps=6"])  # taken over: the run resumes
    assert RunDir.at(folder).status == "completed" and RunDir.at(folder).results["steps"] == 6
    with RunLock(folder):  # released when train.py ends, so the next one may start
        assert (folder / ".lock").read_text().strip() == str(os.getpid())


# ------------------------------------------------------------------- resuming checks the config


def test_resume_with_another_config_is_refused_listing_the_keys(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _unfinished(tiny_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    message = train_error(["seed=7", "optim.lr=0.001", "divergence=gjs"], folder, monkeypatch)
    assert message.startswith(f"Error: {folder} holds an unfinished run with another config: ")
    for changed in (  # each differing key with both values (the config's derived keys too)
        "choices.divergence ('kl_qp' in the folder, 'gjs' now)",
        "divergence._target_ ('vae_gjs.divergences.KLqp' in the folder, 'vae_gjs.divergences.GJS' now)",
        "optim.lr (0.0001 in the folder, 0.001 now)",
        "seed (1234 in the folder, 7 now); ",
    ):
        assert changed in message, (changed, message)
    assert message.endswith(
        "resume it with the folder's values, or start afresh in a new folder (leave hydra.run.dir out, "
        f"or hydra.run.dir=<new folder>) or delete {folder}"
    )
    assert "threads" not in message and "data_dir" not in message
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"} == before
    # ckpt_path=last is checked the same way; keys that may change (steps, threads, logger, test) may
    train_tiny(
        folder, [TINY_RUN, "threads=1", "trainer.max_steps=6", "test=false", "logger=none", "ckpt_path=last"]
    )
    assert RunDir.at(folder).status == "completed" and RunDir.at(folder).results["steps"] == 6


#: Whole epochs of 2 steps, so that every epoch ends with a checkpoint.
EPOCHS = ["threads=1", "trainer.max_steps=-1", "trainer.limit_train_batches=2", "images_every_n_epochs=null"]


def test_a_resume_with_fewer_epochs_than_the_folder_holds_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=3"])
    (tmp_path / "status.json").write_text('{"status": "running", "pid": 999999}')  # stopped after 3 epochs
    message = train_error([*EPOCHS, "trainer.max_epochs=2"], tmp_path, monkeypatch)
    assert message == (
        f"Error: {tmp_path} holds 3 trained epochs (6 steps); trainer.max_epochs=2 is fewer: allowed: "
        "trainer.max_epochs >= 3 to train on from it, or a new folder (leave hydra.run.dir out, or "
        "hydra.run.dir=<new folder>) to start afresh"
    )
    assert RunDir.at(tmp_path).status == "running"  # the folder as it was


def test_a_completed_run_is_skipped_refused_or_extended_but_never_silently_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=2"])
    stamp = (tmp_path / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    holds = f"Error: {tmp_path} holds a run completed after 2 epochs (4 steps)"
    message = train_error([*EPOCHS, "trainer.max_epochs=2", "lam=4"], tmp_path, monkeypatch)
    assert message.startswith(f"{holds} with another config: lam (1.0 in the folder, 4 now), ")
    assert message.endswith(
        "it is not retrained: run it with the folder's values, or this config in a new folder "
        "(leave hydra.run.dir out, or hydra.run.dir=<new folder>)"
    )
    message = train_error([*EPOCHS, "trainer.max_epochs=3"], tmp_path, monkeypatch)
    assert message.startswith(
        f"{holds}; trainer.max_epochs=3 is not applied to it: add ckpt_path=last to train "
    )
    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=2", "logger=none"])  # the same run: skipped
    assert (tmp_path / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp

    train_tiny(tmp_path, [*EPOCHS, "trainer.max_epochs=3", "ckpt_path=last"])  # extended in place
    results = RunDir.at(tmp_path).results
    assert RunDir.at(tmp_path).status == "completed" and (results["epochs"], results["steps"]) == (3, 6)
    assert [row["epoch"] for row in read_metrics(tmp_path / "metrics.csv")] == [0, 1, 2, 3]  # + the test row
    message = train_error([*EPOCHS, "trainer.max_epochs=2", "ckpt_path=last"], tmp_path, monkeypatch)
    assert message.startswith(
        f"Error: {tmp_path} holds 3 trained epochs (6 steps); trainer.max_epochs=2 is fewer"
    )


def test_resume_of_a_run_written_by_an_older_platform_warns_about_the_new_keys(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder whose config.yaml predates keys (here ``module`` and ``learn_alpha``) and records
    the unused default α of a divergence without skew, as older versions did, still resumes."""
    folder = _unfinished(tiny_run, tmp_path / "run")
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["alpha"] is None and "module" in saved  # kl_qp: α recorded as null today
    saved.update(alpha=0.5)
    del saved["module"], saved["learn_alpha"]
    (folder / "config.yaml").write_text(yaml.safe_dump(saved))
    with caplog.at_level("WARNING", logger="vae_gjs.resume"):
        train_tiny(folder, [TINY_RUN, "threads=1", "trainer.max_steps=6"])
    assert RunDir.at(folder).status == "completed" and RunDir.at(folder).results["steps"] == 6
    warning = next(r.getMessage() for r in caplog.records if r.name == "vae_gjs.resume")
    listed = warning.split("the keys ")[1].split(" existed")[0].split(", ")
    assert {"learn_alpha", "module._target_", "module.lam"} <= set(listed) and "alpha" not in listed


def test_a_key_deleted_from_the_folders_config_is_refused(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only keys the project's older versions lacked may be missing: a ``likelihood`` deleted by
    hand used to resume with the command's value behind a warning calling the folder older
    (the likelihood switched mid-run)."""
    folder = _unfinished(tiny_run, tmp_path / "run")
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    del saved["likelihood"], saved["module"]["likelihood"]
    (folder / "config.yaml").write_text(yaml.safe_dump(saved))
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}
    message = train_error(["likelihood=bernoulli"], folder, monkeypatch)
    assert message.startswith(f"Error: {folder} holds an unfinished run with another config: ")
    assert "likelihood ('<absent>' in the folder, 'bernoulli' now)" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"} == before


# --------------------------------------------------------------------------- corrupt run files


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("config.yaml", "alpha: [0.5\nseed: 1\n", "ParserError"),
        ("config.yaml", "", "ValueError"),  # "the file is empty"; it used to resume as "an older version"
        ("status.json", '{"status": "runn', "JSONDecodeError"),
        ("metrics.csv", "epoch,step,train/loss\nzero,3,1.5\n", "ValueError"),
    ],
)
def test_a_corrupt_run_file_is_named_in_one_line(
    name: str, content: str, reason: str, tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _unfinished(tiny_run, tmp_path / "run")
    (folder / name).write_text(content)
    message = train_error([TINY_RUN], folder, monkeypatch)
    assert message.startswith(f"Error: {folder / name} is corrupt ({reason}: "), message
    assert message.endswith(
        "delete it (train.py rewrites it on the next attempt, evaluate.py rewrites eval.json) or restore it "
        "from a backup"
    )


def test_reports_and_sweep_evaluation_skip_a_corrupt_run_and_go_on(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from omegaconf import OmegaConf

    from vae_gjs.evaluation.sweep import evaluate_sweep
    from vae_gjs.reports import collect

    sweep = tmp_path / "sweep"
    for name in ("a_good", "b_bad_config", "c_bad_eval", "d_bad_status"):
        shutil.copytree(tiny_run, sweep / name)
    (sweep / "b_bad_config" / "config.yaml").write_text("alpha: [0.5\n")
    (sweep / "c_bad_eval" / "eval.json").write_text("{")
    (sweep / "d_bad_status" / "status.json").write_text("[1, 2")
    records = {r.path.name: r for r in collect(sweep)}
    assert sorted(records) == ["a_good", "c_bad_eval"]  # a corrupt eval.json: a run not evaluated
    assert not records["c_bad_eval"].finished and records["c_bad_eval"].problem == "eval.json is corrupt"
    assert "Skipped 2 run(s) with corrupt files: b_bad_config, d_bad_status" in caplog.text

    options = OmegaConf.load(ROOT / "conf" / "eval" / "default.yaml")
    quick = {"k": 2, "n_batches": 1, "batch_size": 8, "bootstrap": 10, "rec_batches": 1, "figures": False}
    cfg = OmegaConf.merge(options, {**quick, "data_dir": str(DATA_DIR), "force": False})
    with pytest.raises(RunError) as info:
        evaluate_sweep(sweep, cfg)
    message = str(info.value)
    assert message.startswith("2 of 4 runs failed: ") and "\n" not in message
    assert f"{sweep / 'b_bad_config' / 'config.yaml'} is corrupt" in message
    assert f"{sweep / 'd_bad_status' / 'status.json'} is corrupt" in message
    for name in ("a_good", "c_bad_eval"):  # evaluated (a corrupt eval.json is simply redone)
        assert json.loads((sweep / name / "eval.json").read_text())["evidence"]["k"] == 2


# ------------------------------------------------------------------------- full or read-only disk


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_training_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save on a full disk raises ``RuntimeError: [enforce fail at inline_container.cc:...]
    ... file write failed``; with little space left it is reported as a full disk."""

    def torch_full(obj: object, handle: object, *args: object, **kwargs: object) -> None:
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
            "data/0: file write failed"
        )

    monkeypatch.setattr(torch, "save", torch_full)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 4096))
    run = tmp_path / "full"
    message = train_error([], run, monkeypatch)
    ckpt = run / "checkpoints" / "best.ckpt"  # Lightning saves best.ckpt, then last.ckpt
    expected = (
        f"cannot write {ckpt}: no space left on device; free space or fix the folder's permissions, then "
        "run the same command again (what was written before is intact)"
    )
    assert message == f"Error: {expected}"
    record = RunDir.at(run)._read_json("status.json")  # status.json is small: it could be written
    assert record["status"] == "failed" and expected in record["error"]
    assert not list(run.rglob(".*.tmp"))  # no half-written checkpoint


def test_stray_temporary_files_are_removed_when_the_folder_is_next_opened(
    tiny_run: Path, tmp_path: Path
) -> None:
    """Writes cut by SIGKILL leave ``.<name>.<random>.tmp`` files (11 MB of them after repeated
    kills): the next process that holds the folder's lock removes those of training's files and
    checkpoints; an evaluation's are its own. Nothing else changes."""
    from vae_gjs.tasks.train import train

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    stray = [run / ".metrics.csv.a1b2c3.tmp", run / "checkpoints" / ".last.ckpt.d4e5f6.tmp"]
    evaluations = run / ".eval.json.g7h8i9.tmp"
    for path in [*stray, evaluations]:
        path.write_bytes(b"half a file")
    before = {
        p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p not in stray and p.name != ".lock"
    }
    train(compose_train([*TINY, f"data_dir={DATA_DIR}", "divergence=kl_qp"], run_dir=run))  # skipped
    assert not any(path.exists() for path in stray) and evaluations.exists()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_torchs_full_disk_errors_are_storage_failures() -> None:
    """What torch's zip writer raises on a full disk: ``file write failed``, or (seen through its
    buffered writes, a real 12 MB tmpfs) ``unexpected pos``, which used to be a traceback."""
    from vae_gjs.io import is_storage_failure

    for message in (
        "[enforce fail at inline_container.cc:672] . unexpected pos 5676032 vs 5675920",
        "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file data/0: file "
        "write failed",
    ):
        assert is_storage_failure(RuntimeError(message))
    assert not is_storage_failure(RuntimeError("size mismatch for net.encoder.fc.4.weight"))


def test_a_real_full_disk_while_training_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """A 12 MB file system holds the two checkpoints of epoch 0 (5.7 MB each), not a third one."""
    with small_disk(tmp_path / "disk", "12m") as disk:
        run = disk / "run"
        result = cli(
            "train.py",
            *TINY,
            "threads=1",
            "trainer.max_steps=-1",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=2",
            f"hydra.run.dir={run}",
            logs=tmp_path / "logs",
            timeout=240,
        )
        line = one_line_error(result, f"cannot write {run / 'checkpoints'}/", ": no space left on device; ")
        record = RunDir.at(run)._read_json("status.json")
        assert record["status"] == "failed" and line.removeprefix("Error: ") in record["error"]
        assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # intact
        assert not list(run.rglob(".*.tmp"))


def test_a_full_disk_while_taking_the_lock_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file records its holder's pid; on a full disk that write used to be a traceback
    (found by benchmarks/chaos.py, a fused group opening its members on a filled tmpfs)."""
    with monkeypatch.context() as patch:
        patch.setattr(os, "pwrite", lambda *args: _enospc())
        with pytest.raises(StorageError) as info, RunLock(tmp_path / "run"):
            pass
    assert str(info.value).startswith(f"cannot write {tmp_path / 'run' / '.lock'}: no space left on device; ")
    with RunLock(tmp_path / "run"):  # released: the next process may take it
        pass


def test_a_full_disk_writing_metrics_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vae_gjs.loggers import AtomicCSVLogger

    metrics = AtomicCSVLogger(tmp_path / "metrics.csv")
    metrics.log_metrics({"epoch": 0, "train/loss": 1.5}, step=3)
    before = (tmp_path / "metrics.csv").read_bytes()
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(StorageError) as info:
        metrics.log_metrics({"epoch": 1, "train/loss": 1.25}, step=7)
    assert str(info.value).startswith(f"cannot write {tmp_path / 'metrics.csv'}: no space left on device; ")
    assert (tmp_path / "metrics.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


def test_evaluate_checks_it_can_write_before_it_computes(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vae_gjs import cli
    from vae_gjs.evaluation import runner

    def no_compute(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluation started computing before checking it can write")

    monkeypatch.setattr(runner, "build_datamodule", no_compute)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "figures").write_text("a file where the figures folder goes")  # not writable, even for root
    cfg = compose_train([f"run_dir={run}", f"data_dir={DATA_DIR}"], config="evaluate")
    with pytest.raises(cli.UserError) as info:
        cli.evaluate(cfg)
    assert str(info.value) == (
        f"Error: cannot write {run / 'figures'}: not writable (a file is in the way of a folder); free space "
        "or fix the folder's permissions, then run the same command again (what was written before is intact)"
    )
    (run / "figures").unlink()
    monkeypatch.setattr(tempfile, "TemporaryFile", _enospc)  # a full disk (simulated)
    with pytest.raises(cli.UserError) as info:
        cli.evaluate(cfg)
    assert str(info.value).startswith(f"Error: cannot write {run}: no space left on device; ")
    assert not (run / "eval.json").exists()
