"""Composition and validation of train.py's configuration (no training here)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hydra_plugins.vae_gjs_sweeper.sweeper import config_files_parsed_once, tidy_float
from tests.conftest import compose_train
from vae_gjs.config import group_name, run_name, sweep_subdir, unused_alpha, validate
from vae_gjs.config.runtime import recorded_config
from vae_gjs.divergences import DGJS, GJS, MMD, KLpq, KLqp, MMDReference
from vae_gjs.errors import ConfigError
from vae_gjs.resume import changed_keys
from vae_gjs.rundir import RunDir


@pytest.mark.parametrize(
    ("choice", "cls", "lam"),
    [
        ("kl_qp", KLqp, 1.0),
        ("kl_pq", KLpq, 1.0),
        ("gjs", GJS, 1.0),
        ("dgjs", DGJS, 1.0),
        ("mmd", MMD, 500.0),
        ("mmd_reference", MMDReference, 500.0),
        ("beta_vae", KLqp, 4.0),
    ],
)
def test_each_divergence_config_instantiates_its_class_and_lambda(choice: str, cls: type, lam: float) -> None:
    cfg = compose_train([f"divergence={choice}", "alpha=0.2"])
    divergence = instantiate(cfg.divergence)
    assert type(divergence) is cls
    assert cfg.lam == lam
    if isinstance(divergence, GJS):
        assert divergence.alpha == 0.2
        assert divergence.dual is (choice == "dgjs")


@pytest.mark.parametrize("choice", ["gjs", "dgjs", "gjs_reference", "dgjs_reference"])
def test_the_gjs_family_takes_its_intermediate_from_the_config(choice: str, tmp_path: Path) -> None:
    """``divergence.prime`` is a key of each GJS config (default: Eq. 16's N_α'); ``prime=false``
    is Nielsen's intermediate. A run folder written before the key existed (and before
    ``learn_alpha``) resumes with the values it trained with: N_α' and a fixed α."""
    assert instantiate(compose_train([f"divergence={choice}"]).divergence).prime is True
    cfg = compose_train([f"divergence={choice}", "divergence.prime=false"], run_dir=tmp_path)
    assert instantiate(cfg.divergence).prime is False
    saved = OmegaConf.to_container(recorded_config(compose_train([f"divergence={choice}"], run_dir=tmp_path)))
    for node in (saved, saved["divergence"], saved["module"]["divergence"]):
        node.pop("prime", None)
        node.pop("learn_alpha")
    run = RunDir.at(tmp_path)
    run.write_config(OmegaConf.create(saved))
    assert changed_keys(run, compose_train([f"divergence={choice}"], run_dir=tmp_path), recorded_config) == {}
    assert changed_keys(run, cfg, recorded_config) == {
        "divergence.prime": ("<absent>", False),
        "module.divergence.prime": ("<absent>", False),
    }
    learned = compose_train([f"divergence={choice}", "learn_alpha=true"], run_dir=tmp_path)
    assert set(changed_keys(run, learned, recorded_config)) == {
        "learn_alpha",
        "divergence.learn_alpha",
        "module.divergence.learn_alpha",
    }


def test_command_line_lambda_overrides_a_preset() -> None:
    assert compose_train(["divergence=beta_vae", "lam=8"]).lam == 8


def test_dataset_and_model_configs_point_at_the_package() -> None:
    cfg = compose_train(["dataset=fmnist"])
    assert cfg.dataset._target_ == "vae_gjs.data.FashionMNIST"
    assert cfg.model.latent_dim == 10
    assert cfg.optim.lr == 1e-4 and cfg.dataset.batch_size == 64 and cfg.seed == 1234
    assert cfg.trainer.max_epochs == 100


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("alpha=-0.1", ["alpha=-0.1", "[0, 1]"]),
        ("alpha=1.5", ["alpha=1.5", "[0, 1]"]),
        ("alpha=nan", ["alpha=nan", "finite"]),
        ("alpha=abc", ["alpha='abc'", "number"]),
        ("lam=-1", ["lam=-1", ">= 0"]),
        ("model.latent_dim=0", ["model.latent_dim=0", ">= 1"]),
        ("dataset.batch_size=0", ["dataset.batch_size=0", ">= 1"]),
        ("likelihood=poisson", ["likelihood='poisson'", "bernoulli, gaussian"]),
        ("precision=fp16", ["precision='fp16'", "bf16, fp32"]),
        ("eval.precision=half", ["precision='half'", "bf16, fp32"]),
        ("trainer.precision=bf16-mixed", ["trainer.precision=bf16-mixed", "precision=bf16"]),
        ("optim.lr=0", ["optim.lr=0", "> 0"]),
        ("seed=1.5", ["seed=1.5", "integer"]),
        ("ckpt_path=/no/such.ckpt", ["ckpt_path='/no/such.ckpt'", "'last'"]),
        ("evaluate=yes", ["evaluate='yes'", "true or false"]),
        ("eval.k=0", ["k=0", ">= 1"]),
        ("learn_alpha=1", ["learn_alpha=1", "true or false"]),
        ("optim.alpha_lr=-0.1", ["optim.alpha_lr=-0.1", ">= 0"]),
        ("objective=test/elbo", ["objective='test/elbo'", "test/loss, test/rec, val/loss, val/rec"]),
        ("objective=val/rec", ["objective=val/rec needs a validation split", "dataset.val_size > 0"]),
        (
            "learn_alpha=true divergence=kl_qp",
            ["learn_alpha=true with divergence=kl_qp", "divergence=gjs or divergence=dgjs"],
        ),
        (
            "learn_alpha=true divergence=mmd",
            ["learn_alpha=true with divergence=mmd", "no skew", "learn_alpha=false"],
        ),
    ],
)
def test_validation_names_the_bad_value_and_what_is_allowed(override: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        validate(compose_train(override.split()))
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_default_config_is_valid() -> None:
    validate(compose_train())


def test_run_name_group_and_subdir_are_readable() -> None:
    cfg = compose_train(["divergence=gjs", "alpha=0.2", "dataset=fmnist"])
    assert run_name("fmnist", "gjs", cfg.divergence, 1.0, 1234) == "fmnist-gjs-a0.2"
    assert (
        run_name("mnist", "beta_vae", compose_train(["divergence=beta_vae"]).divergence, 4.0, 1234)
        == "mnist-beta_vae-l4"
    )
    learned = compose_train(["divergence=dgjs", "learn_alpha=true"]).divergence
    assert run_name("mnist", "dgjs", learned, 1.0, 1234) == "mnist-dgjs-a0.5-learned"
    assert group_name("RunMode.RUN", "multirun/x") == "single"
    assert group_name("RunMode.MULTIRUN", "multirun/2026-01-01_00-00-00") == "multirun-2026-01-01_00-00-00"
    assert sweep_subdir("alpha=0.3,divergence=gjs", 4) == "alpha=0.3,divergence=gjs"
    assert sweep_subdir("", 4) == "job4"


def test_a_job_folder_name_never_exceeds_what_a_file_system_takes(tmp_path: Path) -> None:
    """A fused sweep with ``evaluate=true`` and a few ``eval.*`` overrides named its jobs' folders
    with more than 255 bytes, and the whole sweep died in ``mkdir`` (ENAMETOOLONG)."""
    long = ",".join(f"eval.option_{i}=é{i}" for i in range(30))
    assert len(long.encode()) > 255
    name = sweep_subdir(long, 0)
    assert len(name.encode()) <= 255 and name.startswith("eval.option_0=é0,")
    assert name == sweep_subdir(long, 7)  # the same job, the same folder: a re-run resumes it
    assert sweep_subdir(long.replace("é29", "é28"), 0) != name
    (tmp_path / name).mkdir()


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [("0.30000000000000004", "0.3"), ("0.1", "0.1"), ("0.7000000000000001", "0.7"), ("2.5e-07", "2.5e-07")],
)
def test_float_range_values_are_rounded(raw: str, tidy: str) -> None:
    assert tidy_float(raw) == tidy
    assert math.isclose(float(tidy_float(raw)), float(raw), rel_tol=1e-12)


def test_table1_experiment_is_the_papers_22_runs_grouped_for_wandb() -> None:
    """The sweeper expands ``+experiment=table1``'s grid into 22 jobs (α rounded, baselines not
    multiplied by α); each job composes to the paper's λ, the budget's settings and one W&B group."""
    base = ["+experiment=table1", "dataset=mnist", "budget=cpu"]
    compose_train(base)
    hydra_cfg = HydraConfig.get()
    sweeper = instantiate(hydra_cfg.sweeper)  # Hydra's plugin scan re-imports the sweeper module
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    (jobs,) = sweeper.split_arguments([], max_batch_size=None)
    alphas = [f"{0.1 * i:.1f}" for i in range(1, 10)]
    expected = [[f"divergence={d}", f"alpha={a}"] for d in ("gjs", "dgjs") for a in alphas]
    expected += [[f"divergence={d}"] for d in ("kl_qp", "kl_pq", "beta_vae", "mmd_reference")]
    assert jobs == expected
    assert hydra_cfg.sweep.dir == "multirun/table1/mnist/cpu"

    lam = {"gjs": 1.0, "dgjs": 1.0, "kl_qp": 1.0, "kl_pq": 1.0, "beta_vae": 4.0, "mmd_reference": 500.0}
    for job in jobs:
        cfg = compose_train([*base, *job])
        folder = sweep_subdir(HydraConfig.get().job.override_dirname, 0)
        assert folder == ",".join(sorted(job)), folder  # dataset and budget are in the parent folder
        assert cfg.lam == lam[cfg.choices.divergence] and cfg.evaluate
        assert cfg.group == "table1-mnist-cpu" and list(cfg.tags) == ["table1", "mnist", "budget-cpu"]
        assert cfg.trainer.max_epochs == 18 and cfg.threads == 1
        assert cfg.eval.batch_size * cfg.eval.n_batches == 10_000  # log p(x) on the whole test set
        assert list(cfg.eval.evidence_likelihood) == ["gaussian", "bernoulli"]  # Figure 5 both ways


def test_seeds_sweep_the_table1_column_as_one_command_and_fuse_per_seed() -> None:
    """``+experiment=table1 'seed=1234,1,2'``: the 22 runs at each seed (66 jobs), each seed's in
    folders of their own (``...,seed=<s>``), and jobs fuse only with jobs of their seed: the seed
    stays in the fused launcher's key (same initial weights, same batches)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from vae_gjs.fused.plan import fusion_key

    base = ["+experiment=table1", "dataset=mnist", "budget=cpu"]
    compose_train(base)
    sweeper = instantiate(HydraConfig.get().sweeper)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    (jobs,) = sweeper.split_arguments(OverridesParser.create().parse_overrides(["seed=1234,1,2"]), None)
    assert len(jobs) == 66 and {job[-1] for job in jobs} == {"seed=1234", "seed=1", "seed=2"}
    assert ["divergence=gjs", "alpha=0.3", "seed=1"] in jobs and ["divergence=kl_qp", "seed=2"] in jobs

    def key(*job: str) -> str:
        cfg = compose_train([*base, *job])
        assert sweep_subdir(HydraConfig.get().job.override_dirname, 0) == ",".join(sorted(job))
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict) and container["seed"] == container["dataset"]["shuffle_seed"]
        return fusion_key(container, None)

    assert key("divergence=kl_qp", "seed=1") == key("divergence=gjs", "alpha=0.3", "seed=1")
    assert key("divergence=kl_qp", "seed=1") != key("divergence=kl_qp", "seed=2")


def test_learned_alpha_experiment_is_two_families_times_three_starts() -> None:
    base = ["+experiment=learned_alpha", "dataset=fmnist", "budget=cpu"]
    compose_train(base)
    hydra_cfg = HydraConfig.get()
    sweeper = instantiate(hydra_cfg.sweeper)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    (jobs,) = sweeper.split_arguments([], max_batch_size=None)
    assert jobs == [[f"divergence={d}", f"alpha={a}"] for d in ("gjs", "dgjs") for a in ("0.1", "0.5", "0.9")]
    assert hydra_cfg.sweep.dir == "multirun/learned_alpha/fmnist/cpu"
    for job in jobs:
        cfg = compose_train([*base, *job])
        validate(cfg)
        assert cfg.learn_alpha and cfg.divergence.learn_alpha and cfg.evaluate
        assert cfg.module.param_groups.divergence.lr == cfg.optim.lr == 1e-4
        assert cfg.group == "learned_alpha-fmnist-cpu" and cfg.trainer.max_epochs == 18
        assert sweep_subdir(HydraConfig.get().job.override_dirname, 0) == ",".join(sorted(job))


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))
)
def test_run_neutral_overrides_do_not_rename_an_experiments_job_folders(experiment: str) -> None:
    """Re-running a sweep with other threads, logger, picture or logging cadence resumes the same
    folders (conf/hydra/dirname/experiment.yaml); the dataset and budget name the parent folder."""
    neutral = ["threads=2", "logger=csv", "images_every_n_epochs=0", "log_every_n_steps=10", "test=false"]
    compose_train(
        [f"+experiment={experiment}", "dataset=mnist", "budget=cpu", "divergence=gjs", "alpha=0.3", *neutral]
    )
    assert sweep_subdir(HydraConfig.get().job.override_dirname, 0) == "alpha=0.3,divergence=gjs"


def test_alpha_on_the_command_line_without_a_skewed_divergence_is_a_warning() -> None:
    message = unused_alpha(compose_train(["divergence=kl_qp", "alpha=0.3"]))
    assert message is not None and "alpha=0.3 has no effect with divergence=kl_qp" in message
    assert unused_alpha(compose_train(["divergence=mmd", "alpha=0.3"])) is not None
    assert unused_alpha(compose_train(["divergence=gjs", "alpha=0.3"])) is None
    assert unused_alpha(compose_train(["alpha=0.3"])) is None  # the default divergence is gjs
    assert unused_alpha(compose_train(["divergence=kl_pq"])) is None  # alpha not set by the user


def test_the_names_config_accepts_are_the_ones_the_packages_implement() -> None:
    """config.py names every choice before torch loads; each package keys its classes by them."""
    from vae_gjs import config
    from vae_gjs.models.likelihoods import LIKELIHOOD_CLASSES
    from vae_gjs.reports import WRITERS

    assert set(config.LIKELIHOODS) == set(LIKELIHOOD_CLASSES)
    assert set(config.REPORTS) == set(WRITERS) | set(config.MODEL_REPORTS)


def test_paper30_budget_is_the_paper_protocol_at_30_epochs() -> None:
    paper, paper30 = compose_train(["budget=paper"]), compose_train(["budget=paper30"])
    assert (paper.trainer.max_epochs, paper30.trainer.max_epochs) == (100, 30)
    assert paper30.dataset.val_size == 0 and paper30.choices.budget == "paper30"


def _experiment_jobs(base: list[str]) -> tuple[list[list[str]], str]:
    compose_train(base)
    hydra_cfg = HydraConfig.get()
    sweeper = instantiate(hydra_cfg.sweeper)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    (jobs,) = sweeper.split_arguments([], max_batch_size=None)
    return jobs, hydra_cfg.sweep.dir


@pytest.mark.parametrize(("dataset", "dgjs", "gjs"), [("fmnist", "0.4", "0.2"), ("mnist", "0.3", "0.1")])
def test_paper_cells_are_the_three_100_epoch_runs_of_the_papers_choices(
    dataset: str, dgjs: str, gjs: str
) -> None:
    base = [f"+experiment=paper_cells_{dataset}"]
    jobs, sweep_dir = _experiment_jobs(base)
    assert jobs == [
        ["divergence=kl_qp"],
        ["divergence=dgjs", f"alpha={dgjs}"],
        ["divergence=gjs", f"alpha={gjs}"],
    ]
    assert sweep_dir == f"multirun/paper_cells/{dataset}/paper"
    for job in jobs:
        cfg = compose_train([*base, *job])
        validate(cfg)
        assert cfg.choices.dataset == dataset and cfg.trainer.max_epochs == 100 and cfg.dataset.val_size == 0
        assert cfg.evaluate and list(cfg.eval.evidence_likelihood) == ["gaussian", "bernoulli"]


def test_likelihood_experiment_trains_the_baselines_with_bce_and_with_255_sse() -> None:
    base = ["+experiment=likelihood", "dataset=mnist", "budget=cpu"]
    jobs, sweep_dir = _experiment_jobs(base)
    assert sweep_dir == "multirun/likelihood/mnist/cpu" and len(jobs) == 6
    expected = {
        ("bernoulli", "kl_qp"): 1.0,
        ("bernoulli", "kl_pq"): 1.0,
        ("bernoulli", "beta_vae"): 4.0,
        ("gaussian", "kl_qp"): 1 / 255,
        ("gaussian", "kl_pq"): 1 / 255,
        ("gaussian", "beta_vae"): 4 / 255,
    }
    seen = {}
    for job in jobs:
        cfg = compose_train([*base, *job])
        validate(cfg)
        seen[(cfg.likelihood, cfg.choices.divergence)] = cfg.lam
        assert cfg.evaluate and cfg.trainer.max_epochs == 18
    assert seen.keys() == expected.keys()
    assert all(math.isclose(seen[key], lam, rel_tol=1e-12) for key, lam in expected.items())


@pytest.mark.parametrize(
    ("dataset", "gjs", "dgjs", "likelihoods"),
    [("mnist", "0.1", "0.3", ("gaussian", "bernoulli")), ("fmnist", "0.2", "0.4", ("gaussian",))],
)
def test_paper_rows_are_the_seven_rows_at_100_epochs_under_their_losses(
    dataset: str, gjs: str, dgjs: str, likelihoods: tuple[str, ...]
) -> None:
    base = [f"+experiment=paper_rows_{dataset}"]
    jobs, sweep_dir = _experiment_jobs(base)
    assert sweep_dir == f"multirun/paper_rows/{dataset}/paper"
    rows = [
        ["divergence=kl_qp"],
        ["divergence=kl_pq"],
        ["divergence=beta_vae"],
        ["divergence=mmd_reference"],
        ["divergence=gjs", "alpha=0.5"],
        ["divergence=gjs", f"alpha={gjs}"],
        ["divergence=dgjs", f"alpha={dgjs}"],
    ]
    runs = {(job[0], *job[1:]) for job in jobs}
    expected = {(f"likelihood={lik}", *row) for lik in likelihoods for row in rows}
    if dataset == "fmnist":  # the baseline rows under the authors' Bernoulli loss too
        expected |= {("likelihood=bernoulli", *row) for row in rows[1:4]}
    assert runs == expected and len(jobs) == len(expected)
    for job in jobs:
        cfg = compose_train([*base, *job])
        validate(cfg)
        assert cfg.choices.dataset == dataset and cfg.trainer.max_epochs == 100 and cfg.dataset.val_size == 0
        assert cfg.evaluate and list(cfg.eval.evidence_likelihood) == ["gaussian", "bernoulli"]


@pytest.mark.parametrize(
    ("dataset", "dgjs", "gjs", "likelihoods"),
    [("fmnist", "0.4", "0.2", ("gaussian",)), ("mnist", "0.3", "0.1", ("gaussian", "bernoulli"))],
)
def test_paper_seeds_are_paper_rows_claim_jobs_in_its_folder_under_its_names(
    dataset: str, dgjs: str, gjs: str, likelihoods: tuple[str, ...]
) -> None:
    """``+experiment=paper_seeds_<dataset> 'seed=1,2'`` trains more seeds of the three claim cells
    (MNIST's under both losses) into paper_rows_<dataset>'s folder: the same jobs, folder names and
    recorded config (so the seed-1234 runs of paper_rows are skipped, not trained again, and one
    report=table1 pairs them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from vae_gjs.config import recorded_config
    from vae_gjs.resume import differences

    seeds_jobs, seeds_dir = _experiment_jobs([f"+experiment=paper_seeds_{dataset}"])
    rows_jobs, rows_dir = _experiment_jobs([f"+experiment=paper_rows_{dataset}"])
    assert seeds_dir == rows_dir == f"multirun/paper_rows/{dataset}/paper"
    assert seeds_jobs == [
        [f"likelihood={lik}", *cell]
        for cell in (
            ["divergence=kl_qp"],
            ["divergence=dgjs", f"alpha={dgjs}"],
            ["divergence=gjs", f"alpha={gjs}"],
        )
        for lik in likelihoods
    ]
    assert all(job in rows_jobs for job in seeds_jobs)
    compose_train([f"+experiment=paper_seeds_{dataset}"])
    sweeper = instantiate(HydraConfig.get().sweeper)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    (seeded,) = sweeper.split_arguments(OverridesParser.create().parse_overrides(["seed=1,2"]), None)
    assert len(seeded) == 2 * len(seeds_jobs) and {job[-1] for job in seeded} == {"seed=1", "seed=2"}
    for job in seeds_jobs:
        names, configs = [], []
        for experiment in (f"paper_rows_{dataset}", f"paper_seeds_{dataset}"):
            cfg = compose_train([f"+experiment={experiment}", "precision=bf16", *job])
            names.append(sweep_subdir(HydraConfig.get().job.override_dirname, 0))
            configs.append(recorded_config(cfg))
        assert names[0] == names[1] and differences(*configs) == {}, (names, differences(*configs))


def test_test_false_is_valid_with_the_default_objective() -> None:
    """``test=false`` skips the final test (the benchmarks' and short checks' choice): the default
    objective ``test/rec`` then has nothing to return, which is no reason to refuse the run."""
    validate(compose_train(["test=false"]))


def test_a_grid_makes_one_job_of_overrides_that_differ_only_in_order() -> None:
    """A command line that pins one cell of a grid (``likelihood=bernoulli divergence=gjs alpha=0.1``
    on ``paper_rows_mnist``) matches a block without ``alpha`` and one with it; both give the same
    overrides, in another order, and so the same run folder: one job, not two (the second trained
    or skipped the first's folder)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    compose_train(["+experiment=paper_rows_mnist"])
    sweeper = instantiate(HydraConfig.get().sweeper)
    sweeper.hydra_context = SimpleNamespace(config_loader=None)
    pinned = ["precision=bf16", "likelihood=bernoulli", "divergence=gjs", "alpha=0.1"]
    (jobs,) = sweeper.split_arguments(OverridesParser.create().parse_overrides(pinned), None)
    assert len(jobs) == 1 and sorted(jobs[0]) == sorted(pinned), jobs


def test_config_files_parsed_once_compose_the_same_configs_as_hydra() -> None:
    """The sweep's check parses each config file once and hands each job a deep copy: jobs that
    share files (in any order, a job again after others, an experiment with its own ``hydra:`` node
    and groups it overrides) compose exactly the configs Hydra composes from the files."""
    jobs = [
        ["+experiment=table1", "divergence=gjs", "alpha=0.3"],
        ["+experiment=paper_rows_mnist", "likelihood=bernoulli", "divergence=mmd_reference"],
        ["divergence=dgjs", "learn_alpha=true", "dataset=fmnist", "precision=fp32"],
        ["+experiment=table1", "divergence=kl_qp", "seed=2", "hydra/launcher=fused"],
    ]

    def composed(overrides: list[str]) -> str:
        compose_train(overrides)
        return OmegaConf.to_yaml(HydraConfig.get()) + OmegaConf.to_yaml(compose_train(overrides))

    expected = [composed(job) for job in jobs]
    with config_files_parsed_once():
        assert [composed(job) for job in [*jobs, *jobs]] == expected * 2
