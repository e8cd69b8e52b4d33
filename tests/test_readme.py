"""The README's commands as a user types them. Every command of its ``bash`` blocks is read from the
README itself and either run from an empty folder as typed — shrunk only by overrides a user could
add (fewer steps, batches, trials or grid points; never a folder of the test's choosing) — or
checked by the named test that runs it, or given a reason; a command without an entry in
:data:`PLAN` fails :func:`test_every_readme_command_is_planned`, so README and tests cannot drift.

A placeholder folder (``outputs/<run>/<time>``, ``multirun/<time>``) stands for the newest folder
of that kind that an earlier command of the same test made, as it would for the user."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.readme import README, commands, run_as_typed

pytestmark = pytest.mark.slow

#: A training run in seconds: 2 steps, one test batch, one thread, metrics.csv only.
SHRINK = (
    "trainer.max_steps=2",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "threads=1",
    "logger=csv",
    "images_every_n_epochs=null",
)
#: An evaluation in seconds (evaluate.py's keys; train.py's are eval.<key>).
EVAL = ("k=2", "n_batches=2", "batch_size=50", "rec_batches=1", "bootstrap=20", "figures=false")
TRAIN_EVAL = tuple(f"eval.{option}" for option in EVAL)
#: dSprites rendered (never downloaded) into the working folder's data/, a sub-grid of it.
DSPRITES = ("data_dir=data", "dataset.source=procedural", "dataset.factors={orientation:[0]}")
#: Every job of a sweep checked and listed with its folder, nothing trained.
DRY = ("hydra.sweeper.dry_run=true",)
#: Table 1's grid cut to 6 runs: both families at two α, two baselines.
TABLE1_GRID = "hydra.sweeper.grid=[{divergence:'gjs,dgjs',alpha:'0.1,0.3'},{divergence:'kl_qp,beta_vae'}]"
#: The likelihood experiment's grid cut to KL(q‖p) under each decoder likelihood.
LIKELIHOOD_GRID = (
    "hydra.sweeper.grid=[{likelihood:bernoulli,divergence:kl_qp},"
    "{likelihood:gaussian,divergence:kl_qp,lam:0.00392156862745098}]"
)

WHEEL_TEST = (
    "tests/test_packaging.py::test_the_wheel_in_a_fresh_venv_trains_and_evaluates_from_its_entry_points"
)
#: How each README command is exercised: ``("run", shrink)`` as typed plus ``shrink``, ``("cfg",
#: why)`` composed (``--cfg job``), ``("test", "path::name")`` by that test, ``("skip", why)``.
PLAN: dict[str, tuple[str, object]] = {
    "make train": ("run", SHRINK),  # the Makefile's recipe (make -n), run as python train.py
    "make test": ("skip", "it is this suite"),
    "pip install .": ("test", WHEEL_TEST),
    "conda env create -f environment.yml": (
        "test",
        "tests/test_packaging.py::test_environment_yml_creates_the_same_environment",
    ),
    "vae-gjs-train divergence=gjs alpha=0.2": ("test", WHEEL_TEST),
    "vae-gjs-evaluate 'run_dir=outputs/<run>/<time>'": ("test", WHEEL_TEST),
    "python train.py divergence=gjs alpha=0.2 dataset=fmnist": ("run", SHRINK),
    "python train.py -m 'alpha=range(0.1,1,0.1)'": ("run", SHRINK),
    "python train.py -m divergence=gjs,dgjs alpha=0.1,0.5 seed=1,2,3": ("run", DRY),
    # rendered into this folder's data/ (not the shared data folder), one orientation of the grid
    "python train.py dataset=dsprites divergence=dgjs alpha=0.5": ("run", (*SHRINK, *DSPRITES)),
    "python train.py dataset=chairs divergence=gjs alpha=0.2": (
        "cfg",
        "the 3D Chairs archive is not in CI's data folder (tests/data/test_chairs.py: a synthetic one)",
    ),
    "python train.py divergence=dgjs learn_alpha=true": ("run", SHRINK),
    "python evaluate.py 'run_dir=outputs/<run>/<time>'": ("run", EVAL),
    "python evaluate.py 'sweep_dir=multirun/<time>'": ("run", EVAL),
    "python train.py hparams_search=optuna budget=cpu": (
        "run",
        ("hydra.sweeper.n_trials=1", "trainer.limit_val_batches=1", *SHRINK),
    ),
    (
        "python train.py hparams_search=optuna hydra.sweeper.n_trials=3 trainer.max_steps=20 "
        "trainer.limit_test_batches=2 logger=csv threads=1 images_every_n_epochs=null"
    ): (
        "test",
        "tests/test_hparams_search.py::test_the_readmes_optuna_smoke_test_selects_on_its_own_validation_split",
    ),
    "python train.py debug=fdr": ("run", ()),
    "python train.py debug=overfit": ("run", ("trainer.max_epochs=2", "trainer.limit_test_batches=2")),
    "python train.py debug=limit": ("run", ()),
    # make train's run, shrunk to 2 steps, extended to 4
    "python train.py 'hydra.run.dir=outputs/mnist-gjs-a0.5/<time>' trainer.max_epochs=150 ckpt_path=last": (
        "run",
        (*SHRINK, "trainer.max_steps=4"),
    ),
    "python examples/explore.py 'outputs/<run>/<time>' --out explore.png": (
        "test",
        "tests/evaluation/test_explore.py::test_the_example_script_writes_its_figure",
    ),
    "python train.py -m +experiment=table1 dataset=mnist budget=cpu": (
        "run",
        (TABLE1_GRID, *SHRINK, *TRAIN_EVAL),
    ),
    "python train.py -m +experiment=table1 dataset=mnist budget=cpu hydra.sweeper.dry_run=true": ("run", ()),
    "python evaluate.py report=table1 sweep_dir=multirun/table1/mnist/cpu": ("run", ()),
    "python evaluate.py report=fig3 sweep_dir=multirun/table1/mnist/cpu": ("run", ()),
    "python evaluate.py report=fig5 sweep_dir=multirun/table1/mnist/cpu": ("run", ()),
    "python evaluate.py report=fig4 sweep_dir=multirun/table1/mnist/cpu": ("run", ()),
    "python evaluate.py report=curves sweep_dir=multirun/table1/mnist/cpu": ("run", ()),
    "python train.py -m +experiment=table1 dataset=fmnist budget=cpu": ("run", DRY),
    "python train.py -m +experiment=table1 dataset=mnist budget=cpu seed=1234,1,2": ("run", DRY),
    (
        "python train.py -m +experiment=table1 dataset=mnist budget=cpu hydra/launcher=fused "
        "hydra.launcher.n_jobs=2"
    ): ("run", DRY),
    "python train.py -m +experiment=paper_cells_fmnist": ("run", DRY),
    "python train.py -m +experiment=likelihood dataset=mnist budget=cpu hydra/launcher=fused": (
        "run",  # one baseline under each likelihood
        (LIKELIHOOD_GRID, *SHRINK, *TRAIN_EVAL),
    ),
    (
        "python evaluate.py report=likelihood sweep_dir=multirun/likelihood/mnist/cpu "
        "table1_dir=multirun/table1/mnist/cpu"
    ): ("run", ()),
    "python train.py -m +experiment=learned_alpha dataset=mnist budget=cpu": (
        "run",
        ("hydra.sweeper.grid=[{divergence:gjs,alpha:0.5}]", *SHRINK, *TRAIN_EVAL),
    ),
    (
        "python evaluate.py report=learned_alpha sweep_dir=multirun/learned_alpha/mnist/cpu "
        "table1_dir=multirun/table1/mnist/cpu"
    ): ("run", ()),
}


def _blocks() -> list[list[str]]:
    """The README's bash blocks, each as its list of commands."""
    return [commands_of(block) for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)]


def commands_of(block: str) -> list[str]:
    found = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            found.append(shlex.join(words))
    return found


def _block(first: str) -> list[str]:
    """The README block whose first command starts with ``first``."""
    (block,) = [b for b in _blocks() if b[0].startswith(first)]
    return block


def _newest(folders: list[Path]) -> Path:
    assert folders, "no folder made by an earlier command for this placeholder"
    return max(folders, key=lambda p: p.stat().st_mtime_ns)


def resolve(word: str, cwd: Path) -> str:
    """``word`` with a placeholder folder replaced by the newest such folder under ``cwd``
    (``outputs/<run>/<time>``: of any run; ``outputs/<name>/<time>``: of the run ``name``)."""
    for placeholder, name in re.findall(r"(outputs/(<run>|[\w.-]+)/<time>)", word):
        runs = [
            p for p in cwd.glob(f"outputs/{'*' if name == '<run>' else name}/*") if p.parent.name != "debug"
        ]
        word = word.replace(placeholder, str(_newest(runs).relative_to(cwd)))
    if "multirun/<time>" in word:
        sweeps = [
            p for p in cwd.glob("multirun/*") if re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", p.name)
        ]
        word = word.replace("multirun/<time>", str(_newest(sweeps).relative_to(cwd)))
    return word


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the README ``command`` as :data:`PLAN` says, in ``cwd``; it must succeed."""
    how, extra = PLAN[command]
    words = [resolve(word, cwd) for word in shlex.split(command)]
    if how == "cfg":
        words, extra = [*words, "--cfg", "job"], ()
    assert how in ("run", "cfg"), (command, how)
    assert isinstance(extra, tuple)
    result = run_as_typed(words, cwd, shrink=extra)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def run_block(first: str, cwd: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run each command of the README block starting with ``first`` that :data:`PLAN` runs."""
    return {c: run(c, cwd) for c in _block(first) if PLAN[c][0] in ("run", "cfg")}


def _config(folder: Path) -> dict:
    return yaml.safe_load((folder / "config.yaml").read_text())


def _results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


# ------------------------------------------------------------------------------------ the plan


def test_every_readme_command_is_planned() -> None:
    """A command added to (or changed in) the README needs an entry here; a stale entry goes."""
    assert set(commands()) == set(PLAN), (
        sorted(set(commands()) - set(PLAN)),
        sorted(set(PLAN) - set(commands())),
    )


@pytest.mark.parametrize("command", [c for c, (how, _) in PLAN.items() if how == "test"])
def test_a_command_checked_elsewhere_names_a_test_that_exists(command: str) -> None:
    path, name = str(PLAN[command][1]).split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), PLAN[command]


def test_make_train_and_the_extension_of_its_finished_run(tmp_path: Path) -> None:
    """``make train`` is its Makefile recipe (read with ``make -n``; the venv it would build is
    this one): ``python train.py $(ARGS)``, here with the default run shrunk; then the README's
    extension of that finished run (README "Outputs")."""
    dry = subprocess.run(
        # --no-print-directory: under `make test` this make is a sub-make, which would add
        # "make[1]: Entering/Leaving directory" lines
        [
            "make",
            "-n",
            "--no-print-directory",
            "train",
            "VENV=.venv",
            "STAMP=/dev/null",
            f"ARGS={' '.join(SHRINK)}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    recipe = shlex.split(dry.stdout.strip().splitlines()[-1])
    assert recipe == [".venv/bin/python", "train.py", *SHRINK]
    result = run_as_typed(["python", *recipe[1:]], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (tmp_path / "outputs" / "mnist-gjs-a0.5").iterdir()  # the default: JS^{Gα}, α = 0.5
    assert _config(folder)["trainer"]["max_epochs"] == 100 and _results(folder)["steps"] == 2
    run_block("python train.py 'hydra.run.dir=outputs/mnist-gjs-a0.5/<time>'", tmp_path)
    assert _results(folder)["steps"] == 4 and _config(folder)["trainer"]["max_epochs"] == 150


# ------------------------------------------------------------------ a first session, in order


def test_the_usage_block_as_typed(tmp_path: Path) -> None:
    """The Usage block in order, as a user's first session in an empty folder."""
    ran = run_block("python train.py divergence=gjs alpha=0.2 dataset=fmnist", tmp_path)

    (fmnist,) = (tmp_path / "outputs" / "fmnist-gjs-a0.2").iterdir()
    assert _config(fmnist)["divergence"]["alpha"] == 0.2 and _config(fmnist)["choices"]["dataset"] == "fmnist"
    (sweep,) = [p for p in (tmp_path / "multirun").iterdir() if (p / "multirun.yaml").is_file()]
    jobs = sorted(p for p in sweep.iterdir() if (p / "config.yaml").is_file())
    assert [_config(job)["alpha"] for job in jobs] == [round(0.1 * i, 1) for i in range(1, 10)]
    assert all(_config(job)["choices"]["divergence"] == "gjs" for job in jobs)  # the default sweeps its skew
    assert all((job / "eval.json").is_file() for job in jobs)  # python evaluate.py sweep_dir=multirun/<time>
    assert "0.30000000000000004" not in "".join(r.stdout + r.stderr for r in ran.values())
    dry = ran["python train.py -m divergence=gjs,dgjs alpha=0.1,0.5 seed=1,2,3"].stdout
    assert dry.startswith("Dry run: 12 jobs checked; nothing was run or written:")
    (dsprites,) = (tmp_path / "outputs" / "dsprites-dgjs-a0.5").iterdir()
    assert _results(dsprites)["steps"] == 2
    chairs = ran["python train.py dataset=chairs divergence=gjs alpha=0.2"].stdout
    assert "_target_: vae_gjs.data.Chairs" in chairs
    (learned,) = (tmp_path / "outputs" / "mnist-dgjs-a0.5-learned").iterdir()
    assert "alpha_learned" in _results(learned)
    assert (learned / "eval.json").is_file()  # python evaluate.py run_dir=outputs/<run>/<time>: the newest


def test_the_debug_presets_as_typed(tmp_path: Path) -> None:
    run_block("python train.py debug=fdr", tmp_path)
    runs = {p.parent.name: p for p in (tmp_path / "outputs" / "debug").glob("*/*")}
    assert len(runs) == 1  # three presets, one run name: three time-stamped folders below it
    folders = sorted((tmp_path / "outputs" / "debug").glob("*/*"))
    assert len(folders) == 3 and all(
        json.loads((f / "status.json").read_text())["status"] == "debug" for f in folders
    )
    fdr = folders[0]  # what conf/debug/fdr.yaml says it writes: last.ckpt only, no metrics.csv
    assert sorted(p.name for p in (fdr / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not (fdr / "metrics.csv").exists() and _results(fdr)["steps"] == 1
    fdr_yaml = (ROOT / "conf" / "debug" / "fdr.yaml").read_text()
    assert "no metrics.csv" in fdr_yaml and "keeps\n# checkpoints/last.ckpt only (no best.ckpt)" in fdr_yaml
    assert _results(folders[2])["epochs"] == 3  # limit: 3 epochs


def test_the_hyperparameter_search_on_a_cpu_budget_as_typed(tmp_path: Path) -> None:
    run(_block("python train.py hparams_search=optuna")[0], tmp_path)
    (sweep,) = (tmp_path / "multirun" / "optuna" / "mnist").iterdir()
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"] > 0


# ------------------------------------------------------------------------ reproducing the paper


def test_reproducing_the_paper_as_typed(tmp_path: Path) -> None:
    """The reproduction blocks: Table 1 on a 6-run grid with its reports, the other experiments'
    sweeps checked job by job (dry runs), the likelihood and learned-α experiments with their
    reports."""
    ran = run_block("python train.py -m +experiment=table1 dataset=mnist budget=cpu", tmp_path)
    ran.update(run_block("python train.py -m +experiment=learned_alpha", tmp_path))
    table1 = tmp_path / "multirun" / "table1" / "mnist" / "cpu"
    assert len([p for p in table1.iterdir() if (p / "eval.json").is_file()]) == 6
    reports = table1 / "reports"
    for name in ("table1.md", "table1.csv", "table1.tex", "fig3.png", "fig5.png", "fig4.png", "curves.png"):
        assert (reports / name).is_file(), name
    dry = {c: r.stdout for c, r in ran.items() if c.endswith("dry_run=true") or PLAN[c][1] == DRY}
    jobs = {c: int(re.match(r"Dry run: (\d+) jobs checked", text).group(1)) for c, text in dry.items()}
    # paper cells, Table 1 ×3 (mnist, fmnist, fused), Table 1 at 3 seeds
    assert sorted(jobs.values()) == [3, 22, 22, 22, 66]
    assert not (tmp_path / "multirun" / "table1" / "fmnist").exists()  # a dry run writes nothing
    likelihood = tmp_path / "multirun" / "likelihood" / "mnist" / "cpu"
    assert (likelihood / "reports" / "likelihood.md").is_file()
    learned = tmp_path / "multirun" / "learned_alpha" / "mnist" / "cpu"
    assert (learned / "reports" / "learned_alpha.md").is_file()
    assert all("alpha_learned" in _results(p) for p in learned.iterdir() if (p / "results.json").is_file())
