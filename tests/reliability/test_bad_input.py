"""Bad input to train.py and evaluate.py: a non-zero exit and one line that names the bad value
and what is allowed, no traceback (unless HYDRA_FULL_ERROR=1). See docs/reliability.md."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import CONF, DATA_DIR, TINY, compose_train, copy_run, run_script
from tests.reliability.helpers import (
    Launched,
    cli,
    launch,
    mount_tmpfs,
    one_line_error,
    stop_all,
    train_error,
    unmount,
)
from vae_gjs.rundir import RunDir

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("alpha=-0.1", ["alpha=-0.1 is outside [0, 1]", "allowed: a real number with 0 <= alpha <= 1"]),
        ("alpha=1.5", ["alpha=1.5 is outside [0, 1]", "allowed: a real number with 0 <= alpha <= 1"]),
        ("alpha=nan", ["alpha=nan is not finite", "allowed: a finite real number"]),
        ("alpha=abc", ["alpha='abc' is not a number", "allowed: a finite real number"]),
        ("lam=-1", ["lam=-1 is negative", "allowed: a real number >= 0"]),
        ("model.latent_dim=0", ["model.latent_dim=0 is not allowed", "allowed: an integer >= 1"]),
        ("dataset.batch_size=0", ["dataset.batch_size=0 is not allowed", "allowed: an integer >= 1"]),
        ("seed=-1", ["seed=-1 is not allowed", "allowed: an integer with 0 <= seed <= 4294967295"]),
        (
            "seed=4294967296",
            ["seed=4294967296 is not allowed", "allowed: an integer with 0 <= seed <= 4294967295"],
        ),
        (
            "trainer.max_epochs=-3",
            ["trainer.max_epochs=-3 is not allowed", "allowed: -1 (no limit) or an integer >= 0"],
        ),
        (
            "trainer.limit_train_batches=-1",
            [
                "trainer.limit_train_batches=-1 is not allowed",
                "allowed: null, a number of batches >= 0, or a fraction",
            ],
        ),
        ("optim.lr=-1", ["optim.lr=-1 is not positive; allowed: a real number > 0"]),  # was optim.alpha_lr
        ("divergnce=gjs", ["divergnce is not a key of this config (did you mean divergence?); allowed: "]),
        (
            "callbacks=null",
            ["callbacks=null is not allowed: callbacks is a config group; allowed: one of its options"],
        ),
        (
            "+optim.lrr=0.1",
            ["+optim.lrr is not a key of this config (did you mean optim.lr?); allowed: the keys"],
        ),
        ("+divergnce=gjs", ["+divergnce is not a key of this config (did you mean divergence?); allowed: "]),
        (
            "+foo=1",
            ["+foo is not a key of this config; allowed: the keys that `python train.py --cfg job` lists"],
        ),
    ],
)
def test_bad_value_is_one_line_naming_it_and_what_is_allowed(
    override: str, fragments: list[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = cli("train.py", override, *TINY, f"hydra.run.dir={run_dir}", logs=tmp_path, timeout=120)
    one_line_error(result, *fragments)
    assert not (run_dir / "status.json").exists()  # rejected before a run started


def test_an_optuna_search_of_no_trials_is_one_line(tmp_path: Path) -> None:
    """``n_trials=0`` used to search nothing and fail with Optuna's traceback (no best trial)."""
    result = cli(
        "train.py",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=0",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        logs=tmp_path,
        timeout=120,
    )
    one_line_error(result, "hydra.sweeper.n_trials=0 is not allowed; allowed: an integer >= 1")


def test_a_model_larger_than_the_memory_is_one_line(tmp_path: Path) -> None:
    """``model.latent_dim=1000000000`` (a 1,024 GB layer) used to end in Hydra's four lines around
    the allocator's error; run with 8 GiB of address space, so it cannot take the machine's."""
    result = cli(
        "train.py",
        "model.latent_dim=1000000000",
        *TINY,
        f"hydra.run.dir={tmp_path / 'run'}",
        logs=tmp_path,
        timeout=120,
        address_space=8 * 2**30,
    )
    one_line_error(
        result,
        "the model does not fit in this machine's memory (model.latent_dim=1000000000, ",
        "can't allocate memory",
        "allowed: a smaller model",
    )
    assert not (tmp_path / "run" / "status.json").exists()


def test_a_run_folder_inside_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    """Hydra makes the folder and opens its log before any task runs: a read-only parent used to
    be Hydra's traceback (a read-only file system: root may write anywhere else)."""
    read_only = tmp_path / "read-only"
    refused = mount_tmpfs(read_only, "1m", read_only=True)
    if refused is not None:
        pytest.skip(f"mounting a read-only tmpfs is not permitted here ({refused})")
    try:
        for folder, args in (
            (read_only / "run", [*TINY, f"hydra.run.dir={read_only / 'run'}"]),
            (read_only / "sweep", ["-m", *TINY, "seed=1,2", f"hydra.sweep.dir={read_only / 'sweep'}"]),
        ):
            result = cli("train.py", *args, logs=tmp_path / "logs", timeout=120)
            one_line_error(result, f"cannot write {folder}: not writable (read-only file system); ")
    finally:
        unmount(read_only)


def test_invalid_wandb_mode_in_the_environment_is_one_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = cli(
        "train.py",
        *TINY,
        "logger=wandb",
        f"hydra.run.dir={run_dir}",
        logs=tmp_path,
        env={"WANDB_MODE": "onlien"},
    )
    one_line_error(
        result,
        "Error: WANDB_MODE (environment variable)='onlien' is unknown; ",
        "allowed: disabled, dryrun, offline, online",
    )
    assert not (run_dir / "status.json").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("optim.lrr=0.1",), ["Error: optim.lrr is not a key of this config (did you mean optim.lr?)"]),
        (
            ("model.latnt_dim=4",),
            ["model.latnt_dim is not a key of this config (did you mean model.latent_dim?)"],
        ),
        (
            ("-m", "optim.lr=1e-3,1e-4", "dataset=mnist,fmnist", "callbacks.checkpoint.monitr=x"),
            ["callbacks.checkpoint.monitr is not a key", "(did you mean callbacks.checkpoint.monitor?)"],
        ),
        (("divergence=mmd", "divergence.kernal=imq"), ["divergence.kernal is not a key of this config"]),
        # printing the config (Hydra's flag and its value before the overrides) says the same
        (("--cfg", "job", "divergence.alpah=0.2"), ["divergence.alpah is not a key", "(did you mean"]),
    ],
)
def test_mistyped_nested_key_is_one_line(args: tuple[str, ...], fragments: list[str], tmp_path: Path) -> None:
    one_line_error(cli("train.py", *args, logs=tmp_path, timeout=120), *fragments)


@pytest.mark.parametrize(
    ("script", "args", "arg"),
    [
        ("train.py", ("-m", "divergence=gjs,dgjs"), "+divergence.prime=false"),
        ("evaluate.py", ("run_dir=somewhere",), "+k=3"),  # a key of the global eval group
    ],
)
def test_adding_a_key_the_config_has_is_one_line(
    script: str, args: tuple[str, ...], arg: str, tmp_path: Path
) -> None:
    """Hydra says ``Could not append to config`` in three lines."""
    one_line_error(
        cli(script, *args, arg, logs=tmp_path, timeout=120),
        f"Error: {arg} adds {arg[1:].split('=')[0]}, which this config already has; ",
        f"allowed: {arg[1:]} (sets it), or +{arg} (adds or sets it)",
    )


@pytest.mark.parametrize("group", ["dataset", "divergence", "logger"])
def test_unknown_option_of_a_group_lists_the_available_ones(group: str, tmp_path: Path) -> None:
    result = cli("train.py", f"{group}=nope", logs=tmp_path, timeout=120)
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    one_line_error(
        result, f"Error: {group}=nope is not an option of the {group} group", f"allowed: {', '.join(options)}"
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("-m", "dataset=mnist,fmnsit"), ["dataset=fmnsit is not an option", "(did you mean fmnist?)"]),
        (("experiment=table1",), ["experiment=table1 is refused", "allowed: +experiment=table1"]),
    ],
)
def test_group_typos_in_sweeps_and_added_groups(
    args: tuple[str, ...], fragments: list[str], tmp_path: Path
) -> None:
    one_line_error(cli("train.py", *args, logs=tmp_path, timeout=120), *fragments)


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("logger=csv", ["Error: logger is not a key of this config", "`python evaluate.py --cfg job` lists"]),
        ("eval.k=3", ["Error: eval.k is not a key of this config (did you mean k?)"]),
        ("kk=3", ["Error: kk is not a key of this config (did you mean k?)"]),
    ],
)
def test_evaluate_refuses_unknown_keys_in_one_line(
    override: str, fragments: list[str], tmp_path: Path
) -> None:
    one_line_error(
        cli("evaluate.py", override, f"run_dir={tmp_path}", logs=tmp_path, timeout=120), *fragments
    )


def test_hydra_full_error_shows_the_traceback(tmp_path: Path) -> None:
    result = cli(
        "train.py",
        "alpha=1.5",
        f"hydra.run.dir={tmp_path / 'run'}",
        logs=tmp_path,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "vae_gjs.errors.ConfigError: alpha=1.5 is outside [0, 1]" in result.stderr


# ---------------------------------------------------------------- errors found after Lightning loads
# Each of these imports Lightning (seconds); they are started together and checked one by one.


def _raw_with_truncated_labels(root: Path) -> Path:
    """A data folder like the shared one, but with t10k-labels-idx1-ubyte cut short by 100 bytes."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in (DATA_DIR / "MNIST" / "raw").glob("*-ubyte"):
        (raw / source.name).symlink_to(source)
    labels = raw / "t10k-labels-idx1-ubyte"
    data = labels.read_bytes()
    labels.unlink()
    labels.write_bytes(data[:-100])
    return root


def _foreign_checkpoint_run(finished_run: Path, folder: Path) -> Path:
    """A copy of a finished run whose last.ckpt holds the weights of a latent_dim=4 model."""
    copy_run(finished_run, folder)
    last = RunDir.at(folder).last_ckpt
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    from vae_gjs.module import build_module

    checkpoint["state_dict"] = build_module(
        compose_train(["model.latent_dim=4"]).module, (1, 32, 32)
    ).state_dict()
    torch.save(checkpoint, last)
    return folder


@pytest.fixture(scope="module")
def finished_run(tiny_run: Path) -> Path:
    """The session's finished tiny run (conftest's ``tiny_run``)."""
    return tiny_run


@pytest.fixture(scope="module")
def heavy(
    tmp_path_factory: pytest.TempPathFactory, finished_run: Path
) -> Iterator[dict[str, tuple[Launched, Path]]]:
    """The slow bad inputs, started at once: ``name -> (process, folder)``."""
    base = tmp_path_factory.mktemp("heavy")
    # A failing download must fail at once wherever the tests run: every request goes to a closed port.
    no_net = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": None}
    started = {}
    missing = base / "nowhere"
    started["missing_data"] = (
        launch(
            "train.py",
            *TINY,
            f"data_dir={missing}",
            f"hydra.run.dir={base / 'missing_run'}",
            logs=base / "missing_logs",
            env=no_net,
        ),
        missing,
    )
    corrupt = _raw_with_truncated_labels(base / "corrupt")
    started["corrupt_data"] = (
        launch(
            "train.py",
            *TINY,
            f"data_dir={corrupt}",
            f"hydra.run.dir={base / 'corrupt_run'}",
            logs=base / "corrupt_logs",
        ),
        corrupt,
    )
    foreign = _foreign_checkpoint_run(finished_run, base / "foreign")
    started["foreign_checkpoint"] = (
        launch("evaluate.py", f"run_dir={foreign}", "figures=false", logs=base / "foreign_logs"),
        foreign,
    )
    yield started
    stop_all(process for process, _ in started.values())


def _failed_status(run_dir: Path, fragment: str) -> None:
    record = RunDir.at(run_dir)._read_json("status.json")
    assert record["status"] == "failed" and fragment in record["error"], record


def test_data_folder_that_does_not_exist(heavy: dict[str, tuple[Launched, Path]]) -> None:
    process, folder = heavy["missing_data"]
    line = one_line_error(
        process.result(),
        f"files missing in {folder / 'MNIST' / 'raw'}",
        "the download failed",
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
        "VAE_GJS_DATA_DIR / data_dir=",
    )
    _failed_status(folder.parent / "missing_run", line.removeprefix("Error: ")[:60])


def test_truncated_raw_file_fails_its_checksum(heavy: dict[str, tuple[Launched, Path]]) -> None:
    process, folder = heavy["corrupt_data"]
    line = one_line_error(
        process.result(),
        f"corrupt data file {folder / 'MNIST' / 'raw' / 't10k-labels-idx1-ubyte'}: SHA-256 ",
        "!= expected ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        "delete it and download it again",
    )
    _failed_status(folder.parent / "corrupt_run", line.removeprefix("Error: ")[:60])


def test_evaluate_a_run_folder_without_checkpoint(finished_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    copy_run(finished_run, run_dir)
    shutil.rmtree(run_dir / "checkpoints")
    result = cli("evaluate.py", f"run_dir={run_dir}", logs=tmp_path / "logs", timeout=180)
    one_line_error(result, f"{run_dir} has no last checkpoint (last.ckpt)", "checkpoints present: none")


def test_evaluate_a_checkpoint_of_another_architecture(heavy: dict[str, tuple[Launched, Path]]) -> None:
    process, run_dir = heavy["foreign_checkpoint"]
    one_line_error(
        process.result(),
        f"checkpoint {run_dir / 'checkpoints' / 'last.ckpt'} does not fit the architecture of "
        f"{run_dir / 'config.yaml'}",
        "net.encoder.fc.4.weight [8, 256] vs [20, 256]",
    )
    assert not (run_dir / "eval.json").exists()


# ------------------------------------------ train.py: errors found before the run folder is touched


def test_train_ckpt_path_last_without_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = train_error(["ckpt_path=last"], tmp_path / "run", monkeypatch)
    assert (
        message == f"Error: {tmp_path / 'run'} has no last checkpoint (last.ckpt); checkpoints present: none"
    )
    assert not (tmp_path / "run" / "status.json").exists()


def test_train_ckpt_path_in_a_sweep_jobs_folder_needs_no_quoting(tmp_path: Path) -> None:
    """``ckpt_path=<sweep>/alpha=0.3,divergence=gjs/...`` reaches train.py as that file (Hydra's
    grammar would refuse the '=' and ',' unquoted): here a missing one, named in one line."""
    from vae_gjs.cli import quoted_paths

    checkpoint = tmp_path / "alpha=0.3,divergence=gjs" / "checkpoints" / "last.ckpt"
    assert quoted_paths([f"ckpt_path={checkpoint}"], keys=("ckpt_path",), marks="=") == [
        f"ckpt_path='{checkpoint}'"
    ]
    assert quoted_paths(["ckpt_path=a.ckpt,b.ckpt"], keys=("ckpt_path",), marks="=") == [
        "ckpt_path=a.ckpt,b.ckpt"
    ]
    result = run_script(
        "train.py", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'run'}", timeout=60
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"ckpt_path='{checkpoint}' does not exist" in result.stderr


def test_train_unknown_trainer_argument_leaves_no_running_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = train_error(["+trainer.max_epoch=3"], tmp_path / "run", monkeypatch)
    assert message.startswith(
        "Error: trainer.max_epoch is not a lightning.Trainer argument (did you mean max_epochs?); allowed: "
    )
    assert "max_epochs" in message
    assert not (tmp_path / "run" / "status.json").exists()


def test_train_from_a_checkpoint_of_another_architecture(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = finished_run / "checkpoints" / "last.ckpt"  # latent_dim=10
    expected = (
        "Error: checkpoint {} does not fit the model of this config: shapes (checkpoint vs config) "
        "net.decoder.fc.0.weight [256, 10] vs [256, 4], net.encoder.fc.4.bias [20] vs [8], "
        "net.encoder.fc.4.weight [20, 256] vs [8, 256]; "
        "allowed: a checkpoint of a run with the same model, dataset and divergence config"
    )
    given = train_error(["model.latent_dim=4", f"ckpt_path={checkpoint}"], tmp_path / "given", monkeypatch)
    assert given == expected.format(checkpoint)
    # An unfinished run's folder reused with another architecture (automatic resumption) stops
    # earlier, at the config check (tests/reliability/test_run_folder.py); the folder stays as it
    # was, so the right command still resumes it.
    reused = tmp_path / "reused"
    shutil.copytree(finished_run, reused)
    (reused / "status.json").write_text('{"status": "running"}')
    before = {p.name: p.read_bytes() for p in reused.iterdir() if p.is_file() and p.name != ".lock"}
    auto = train_error(["model.latent_dim=4"], reused, monkeypatch)
    assert auto.startswith(f"Error: {reused} holds an unfinished run with another config: ")
    assert "model.latent_dim (10 in the folder, 4 now)" in auto
    assert {p.name: p.read_bytes() for p in reused.iterdir() if p.is_file() and p.name != ".lock"} == before


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["trainer.accelerator=gpu"],
            "Error: trainer.accelerator=gpu but this machine has no GPU "
            "(torch.cuda.is_available() is False); use trainer.accelerator=cpu or auto",
        ),
        (
            ["trainer=ddp"],
            "Error: trainer.accelerator=gpu but this machine has no GPU "
            "(torch.cuda.is_available() is False); for DDP on CPU processes (gloo) add "
            "trainer.accelerator=cpu trainer.devices=2",
        ),
        (
            ["trainer.precision=banana"],
            "Error: trainer.precision=banana is not used here; allowed: trainer.precision=32-true, and "
            "precision=bf16 for bfloat16",
        ),
        (
            ["dataset.val_size=60000"],
            "Error: dataset.val_size=60000 leaves no training images (mnist has 60000); "
            "allowed: 0 <= dataset.val_size < 60000",
        ),
        (
            ["trainer.limit_train_batches=0.0001"],
            "Error: trainer.limit_train_batches=0.0001 leaves no batch of the 938 (0.0001 x 938 < 1); "
            "allowed: 0 (none), a fraction >= 0.0011 or a number of batches >= 1",
        ),
        (
            ["+callbacks/early_stopping=default", "callbacks.early_stopping.monitor=val/loss"],
            "Error: callbacks.early_stopping.monitor=val/loss is not a metric this run logs; allowed: "
            "time/epoch_s, train/div, train/loss, train/rec",
        ),
        (
            ["dataset.batch_size=1000000"],
            "Error: dataset.batch_size=1000000 is larger than the 60000 training images of mnist; "
            "allowed: 1 <= dataset.batch_size <= 60000",
        ),
    ],
)
def test_train_values_checked_when_lightning_or_the_data_can_tell(
    overrides: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "accelerator" in expected and torch.cuda.is_available():
        pytest.skip("accelerator=gpu checks the error of a machine without a GPU; this one has one")
    assert train_error(overrides, tmp_path / "run", monkeypatch).startswith(expected)


def test_more_threads_than_cores_are_capped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from vae_gjs.hardware import usable_threads

    cores = len(os.sched_getaffinity(0))
    assert usable_threads(cores) == cores and not caplog.records
    assert usable_threads(999) == cores
    assert f"threads=999 is more than the {cores} CPU cores available; using threads={cores}" in caplog.text


def test_wandb_forced_online_without_a_server_fails_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from vae_gjs.errors import RunError
    from vae_gjs.loggers import resolve_wandb_mode

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WANDB_MODE", "online")
    started = time.monotonic()
    with pytest.raises(RunError) as info:
        resolve_wandb_mode("auto")
    assert time.monotonic() - started < 5
    assert str(info.value) == (
        f"W&B mode is online but the server http://127.0.0.1:{port} did not answer within 2 s; use "
        "WANDB_MODE=offline (upload later with `wandb sync`) or logger.wandb.mode=auto, or check the network"
    )


def test_train_from_a_file_that_is_not_a_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    garbage, foreign, truncated = tmp_path / "garbage.ckpt", tmp_path / "weights.pt", tmp_path / "cut.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(3)}, foreign)
    truncated.write_bytes(foreign.read_bytes()[:300])
    message = train_error([f"ckpt_path={garbage}"], tmp_path / "a", monkeypatch)
    allowed = "allowed: a checkpoint written by train.py (<run_dir>/checkpoints/*.ckpt)"
    assert message.startswith(f"Error: cannot read checkpoint {garbage} (UnpicklingError: ")
    assert message.endswith(allowed)
    message = train_error([f"ckpt_path={truncated}"], tmp_path / "c", monkeypatch)
    assert message == (
        f"Error: cannot read checkpoint {truncated} (RuntimeError: PytorchStreamReader failed reading zip "
        f"archive: failed finding central directory); {allowed}"
    )
    message = train_error([f"ckpt_path={foreign}"], tmp_path / "b", monkeypatch)
    assert (
        message
        == f"Error: {foreign} is not a checkpoint written by train.py (no Lightning state_dict); {allowed}"
    )
