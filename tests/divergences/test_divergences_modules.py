"""The regulariser modules D(q ‖ p), p = N(0, I): KL, GJS/DGJS, MMD, and ``build_divergence``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vae_gjs.divergences import (
    DGJS,
    GJS,
    MMD,
    Divergence,
    KLpq,
    KLqp,
    MMDReference,
    build_divergence,
    gjs_normal,
    imq_kernel,
    mmd2,
    rbf_kernel,
)

F64 = torch.float64
ALL_NAMES = ["dgjs", "dgjs_reference", "gjs", "gjs_reference", "kl_pq", "kl_qp", "mmd", "mmd_reference"]


def _posterior(seed: int, batch: int = 32, d: int = 6, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    mu = 1.5 * torch.randn(batch, d, generator=g, dtype=F64)
    logvar = torch.empty(batch, d, dtype=F64).uniform_(-4, 3, generator=g)
    return mu.to(dtype), logvar.to(dtype)


def _eq3(mu, logvar):
    var = logvar.exp()
    return 0.5 * (var - var.log() + mu**2 - 1).sum(-1)


def _eq4(mu, logvar):
    var = logvar.exp()
    return 0.5 * (1 / var + var.log() + mu**2 / var - 1).sum(-1)


# ---- KL and GJS regularisers ---------------------------------------------------------------------


def test_klqp_is_eq3_and_klpq_is_eq4():
    mu, logvar = _posterior(0)
    out_qp, out_pq = KLqp()(mu, logvar), KLpq()(mu, logvar)
    assert out_qp.shape == out_pq.shape == (32,)
    torch.testing.assert_close(out_qp, _eq3(mu, logvar), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out_pq, _eq4(mu, logvar), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_gjs_and_dgjs_edges_are_the_kls(dtype):
    """Proposition 1 for the modules: GJS α=0 → KL(q‖p), α=1 → KL(p‖q); DGJS α=0 → KL(p‖q),
    α=1 → KL(q‖p). Exact α: rtol 1e-12 (f64) / 1e-5 (f32); α = 1e-6: < 1e-3·(1 + KL)."""
    mu, logvar = _posterior(1, dtype=dtype)
    qp, pq = _eq3(mu.double(), logvar.double()), _eq4(mu.double(), logvar.double())
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for module, at_0, at_1 in [(GJS, qp, pq), (DGJS, pq, qp)]:
        torch.testing.assert_close(module(0.0)(mu, logvar).double(), at_0, rtol=rtol, atol=rtol)
        torch.testing.assert_close(module(1.0)(mu, logvar).double(), at_1, rtol=rtol, atol=rtol)
        gap_0 = (module(1e-6)(mu, logvar).double() - at_0).abs() / (1 + at_0)
        gap_1 = (module(1 - 1e-6)(mu, logvar).double() - at_1).abs() / (1 + at_1)
        assert gap_0.max() < 1e-3 and gap_1.max() < 1e-3
    # DGJS is the dual of GJS: the KLs from the intermediate instead of to it
    torch.testing.assert_close(
        DGJS(0.3)(mu, logvar),
        gjs_normal(mu, logvar, torch.zeros_like(mu), torch.zeros_like(mu), 0.3, dual=True),
    )
    # Nielsen's variant vanishes at the edges instead
    assert GJS(0.0, prime=False)(mu, logvar).abs().max() < 1e-5
    assert DGJS(1.0, prime=False)(mu, logvar).abs().max() < 1e-5


@pytest.mark.parametrize(
    ("dual", "prime", "alpha"), list(itertools.product([False, True], [False, True], [0.0, 0.3, 0.5, 1.0]))
)
def test_gjs_parts_recombine_into_the_value(dual, prime, alpha):
    mu, logvar = _posterior(2)
    module = (DGJS if dual else GJS)(alpha, prime=prime)
    out, parts = module.value_and_parts(mu, logvar)
    keys = ["kl_m_q", "kl_m_p"] if dual else ["kl_q_m", "kl_p_m"]
    assert list(parts) == keys
    torch.testing.assert_close(module(mu, logvar), out, rtol=0, atol=0)
    assert out.shape == (32,) and all(v.shape == (32,) for v in parts.values())
    assert all(v.min() >= 0 for v in parts.values())
    torch.testing.assert_close(out, (1 - alpha) * parts[keys[0]] + alpha * parts[keys[1]])


def test_gjs_terms_are_kls_to_the_primed_intermediate():
    """KL(q‖N_α') with N_α' ∝ q^α p^(1-α): for α = 0 the intermediate is p, for α = 1 it is q."""
    mu, logvar = _posterior(3)
    zeros = torch.zeros(32, dtype=F64)
    at_0, at_1 = GJS(0.0).value_and_parts(mu, logvar)[1], GJS(1.0).value_and_parts(mu, logvar)[1]
    torch.testing.assert_close(at_0["kl_q_m"], _eq3(mu, logvar))
    torch.testing.assert_close(at_0["kl_p_m"], zeros)
    torch.testing.assert_close(at_1["kl_q_m"], zeros)
    torch.testing.assert_close(at_1["kl_p_m"], _eq4(mu, logvar))


def test_divergences_without_parts_return_none_and_modules_are_divergences():
    mu, logvar = _posterior(4, batch=3)
    value, parts = KLqp().value_and_parts(mu, logvar)
    assert parts == {}
    torch.testing.assert_close(value, _eq3(mu, logvar))
    for name in ALL_NAMES:
        assert issubclass(Divergence.registry[name], Divergence)


# ---- build_divergence and argument checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "cls"),
    [
        ("kl_qp", {}, KLqp),
        ("kl_pq", {}, KLpq),
        ("gjs", {"alpha": 0.2}, GJS),
        ("gjs", {"alpha": 0.2, "prime": False}, GJS),
        ("dgjs", {"alpha": 0.7}, DGJS),
        ("mmd", {"kernel": "rbf"}, MMD),
        ("mmd_reference", {"n_prior": 50}, MMDReference),
    ],
)
def test_build_divergence_by_name(name, kwargs, cls):
    module = build_divergence(name, **kwargs)
    assert type(module) is cls
    mu, logvar = _posterior(5, batch=4, d=3)
    out = module(mu, logvar)
    assert out.shape == (4,) and torch.isfinite(out).all()
    if name in ("gjs", "dgjs"):
        assert module.alpha == kwargs["alpha"]
        assert module.dual == (name == "dgjs") and module.prime == kwargs.get("prime", True)


def test_build_divergence_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError, match="nonsense") as info:
        build_divergence("nonsense")
    message = str(info.value)
    for name in ALL_NAMES:
        assert name in message


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), float("inf")])
@pytest.mark.parametrize("cls", [GJS, DGJS])
def test_alpha_outside_unit_interval_raises_naming_the_value(cls, alpha):
    with pytest.raises(ValueError, match="alpha") as info:
        cls(alpha)
    assert repr(alpha) in str(info.value)
    with pytest.raises(ValueError, match="alpha"):
        build_divergence(cls.name, alpha=alpha)


def test_mmd_argument_checks():
    with pytest.raises(ValueError, match="kernel"):
        MMD(kernel="laplace")
    with pytest.raises(ValueError, match="scale"):
        MMD(scale=0.0)
    with pytest.raises(ValueError, match="n_prior"):
        MMDReference(n_prior=0)
    with pytest.raises(ValueError, match="at least 2"):
        mmd2(torch.zeros(1, 2), torch.zeros(3, 2), rbf_kernel(1.0))


# ---- MMD ---------------------------------------------------------------------------------------


def _loop_mmd2(x, y, kernel, biased):
    """MMD² with explicit Python loops and math.exp (independent of the vectorised code)."""
    x, y = x.tolist(), y.tolist()

    def k(a, b):
        return kernel(sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True)))

    n, m = len(x), len(y)
    if biased:
        kxx = sum(k(a, b) for a in x for b in x) / n**2
        kyy = sum(k(a, b) for a in y for b in y) / m**2
    else:
        kxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
        kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(a, b) for a in x for b in y) / (n * m)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("biased", [False, True])
def test_mmd2_against_explicit_loops(biased):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, generator=g, dtype=F64)
    y = torch.randn(4, 2, generator=g, dtype=F64) + 0.5
    scale = 1.7
    ours_rbf = float(mmd2(x, y, rbf_kernel(scale), biased=biased))
    ours_imq = float(mmd2(x, y, imq_kernel(scale), biased=biased))
    assert ours_rbf == pytest.approx(_loop_mmd2(x, y, lambda s: math.exp(-s / scale), biased), rel=1e-12)
    assert ours_imq == pytest.approx(_loop_mmd2(x, y, lambda s: scale / (scale + s), biased), rel=1e-12)


@pytest.mark.parametrize("kernel", [rbf_kernel(4.0), imq_kernel(4.0)], ids=["rbf", "imq"])
def test_unbiased_mmd2_mean_is_zero_for_same_distribution_and_positive_for_shift(kernel):
    """300 replications with n = m = 20 in d = 2: the U-statistic's mean is within 5 standard
    errors of 0 under H0, and > 10 standard errors above 0 for a unit mean shift."""
    g = torch.Generator().manual_seed(1)
    same, shifted = [], []
    for _ in range(300):
        x = torch.randn(20, 2, generator=g, dtype=F64)
        y = torch.randn(20, 2, generator=g, dtype=F64)
        same.append(float(mmd2(x, y, kernel)))
        shifted.append(float(mmd2(x, y + 1.0, kernel)))
    same_t, shifted_t = torch.tensor(same), torch.tensor(shifted)
    se_same = float(same_t.std()) / math.sqrt(300)
    se_shift = float(shifted_t.std()) / math.sqrt(300)
    assert abs(float(same_t.mean())) < 5 * se_same
    assert float(same_t.min()) < 0  # unbiased: individual estimates can be negative
    assert float(shifted_t.mean()) > 10 * se_shift


@pytest.mark.parametrize("kernel", [rbf_kernel(2.0), imq_kernel(2.0)], ids=["rbf", "imq"])
def test_biased_and_unbiased_mmd2_relation(kernel):
    """With k(x, x) = 1 (both kernels): V - U = (1 - Ū_xx)/n + (1 - Ū_yy)/m, where Ū are the
    off-diagonal means; the V-statistic (an RKHS squared norm) is never negative."""
    g = torch.Generator().manual_seed(2)
    for n, m in [(5, 7), (12, 3), (30, 30)]:
        x = torch.randn(n, 3, generator=g, dtype=F64)
        y = torch.randn(m, 3, generator=g, dtype=F64)
        kxx, kyy = kernel(x, x), kernel(y, y)
        off_xx = (kxx.sum() - n) / (n * (n - 1))
        off_yy = (kyy.sum() - m) / (m * (m - 1))
        biased, unbiased = mmd2(x, y, kernel, biased=True), mmd2(x, y, kernel, biased=False)
        torch.testing.assert_close(biased - unbiased, (1 - off_xx) / n + (1 - off_yy) / m)
        assert biased >= 0
        assert mmd2(x, x, kernel, biased=True).abs() < 1e-12


def _reference_mmd_paper(mu: np.ndarray, logvar: np.ndarray, prior: np.ndarray) -> float:
    """The authors' MMD term, written independently: x = [μ, log σ²] (width 2d), y = prior draws,
    k(a, b) = exp(-‖a - b‖² / (2d)²), biased V-statistic mean k(y,y) + mean k(x,x) - 2 mean k(y,x)."""
    x = np.concatenate([mu, logvar], axis=1)
    width = x.shape[1]

    def k(a, b):
        sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-np.maximum(sq, 0) / width**2)

    return float(k(prior, prior).mean() + k(x, x).mean() - 2 * k(prior, x).mean())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_mmd_reference_matches_independent_implementation(dtype):
    mu, logvar = _posterior(6, batch=16, d=5, dtype=dtype)
    torch.manual_seed(123)
    out = MMDReference()(mu, logvar)
    torch.manual_seed(123)
    prior = torch.randn(200, 10, dtype=dtype)  # the same 200 draws of N(0, I_{2d})
    ref = _reference_mmd_paper(mu.double().numpy(), logvar.double().numpy(), prior.double().numpy())
    assert out.shape == (16,)
    assert torch.all(out == out[0])
    assert float(out[0]) == pytest.approx(ref, rel=1e-10 if dtype == torch.float64 else 1e-4)


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
@pytest.mark.parametrize("biased", [False, True])
def test_mmd_module_runs_gives_equal_rows_and_detects_mismatch(kernel, biased):
    """One value per batch broadcast to [B]; q = p gives ~0, a shifted q gives clearly more."""
    torch.manual_seed(0)
    batch, d = 256, 4
    module = MMD(kernel=kernel, biased=biased)
    zeros = torch.zeros(batch, d)
    matched = module(zeros, zeros)
    shifted = module(torch.full((batch, d), 2.0), torch.zeros(batch, d))
    assert matched.shape == shifted.shape == (batch,)
    assert torch.all(matched == matched[0]) and torch.all(shifted == shifted[0])
    assert torch.isfinite(matched).all()
    assert abs(float(matched[0])) < 0.02
    assert float(shifted[0]) > 10 * max(abs(float(matched[0])), 1e-3)


def test_mmd_default_scale_is_twice_the_latent_size():
    mu, logvar = _posterior(7, batch=8, d=3)
    torch.manual_seed(5)
    default = MMD(kernel="rbf")(mu, logvar)
    torch.manual_seed(5)
    explicit = MMD(kernel="rbf", scale=6.0)(mu, logvar)
    torch.manual_seed(5)
    other = MMD(kernel="rbf", scale=1.0)(mu, logvar)
    torch.testing.assert_close(default, explicit)
    assert not torch.allclose(default, other)


def test_mmd_of_a_lone_row_falls_back_to_the_v_statistic() -> None:
    """A last training batch of one image must not crash the unbiased MMD."""
    torch.manual_seed(0)
    value = MMD()(torch.zeros(1, 3), torch.zeros(1, 3))
    assert value.shape == (1,) and torch.isfinite(value).all() and value.item() >= 0


def test_a_subclass_without_its_own_name_does_not_replace_its_parent() -> None:
    class Tweaked(KLqp):
        pass

    assert build_divergence("kl_qp").__class__ is KLqp
    assert Tweaked not in Divergence.registry.values()


# ---------------------------------------------------------------- fused sweeps: stacked calls


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(
    "members",
    [
        [KLqp(), KLqp(), KLqp()],
        [KLpq(), KLpq()],
        [GJS(a / 10) for a in range(11)],
        [DGJS(a / 10) for a in range(11)],
        [GJS(0.2, prime=False), GJS(0.7, prime=False)],
    ],
    ids=["kl_qp", "kl_pq", "gjs", "dgjs", "gjs-unprimed"],
)
def test_stacked_rows_are_each_members_own_value_bit_for_bit(members, dtype):
    """One call for N members gives exactly what N separate calls give (same elementwise
    operations, α and 1 - α rounded alike), here with log-variances out to ±30."""
    keys = {member.stack_key() for member in members}
    assert len(keys) == 1 and None not in keys
    stacks = [_posterior(seed, batch=16, d=5, dtype=dtype) for seed in range(len(members))]
    mu = torch.stack([s[0] for s in stacks])
    logvar = torch.stack([s[1] for s in stacks])
    logvar[0, 0] = torch.linspace(-30, 30, 5, dtype=dtype)
    together = type(members[0]).stacked(members, mu, logvar)
    separately = torch.stack([member(mu[n], logvar[n]) for n, member in enumerate(members)])
    assert together.shape == (len(members), 16) and torch.isfinite(together).all()
    assert torch.equal(together, separately)


def test_stack_keys_part_what_cannot_share_a_call():
    class Scaled(KLqp):  # a subclass may change the value: never stacked with its parent
        def value_and_parts(self, mu, logvar):
            value, parts = super().value_and_parts(mu, logvar)
            return 2 * value, parts

    keys = {
        "kl_qp": KLqp().stack_key(),
        "kl_pq": KLpq().stack_key(),
        "gjs": GJS(0.3).stack_key(),
        "gjs-other-alpha": GJS(0.9).stack_key(),
        "gjs-unprimed": GJS(0.3, prime=False).stack_key(),
        "dgjs": DGJS(0.3).stack_key(),
    }
    assert keys["gjs"] == keys["gjs-other-alpha"]
    assert len({v for k, v in keys.items() if k != "gjs-other-alpha"}) == 5
    # Evaluated member by member: divergences that draw, a learned α, subclasses.
    for alone in (MMD(), MMDReference(), GJS(0.3, learn_alpha=True), Scaled()):
        assert alone.stack_key() is None


def _authors_gjs(mean, logvar, a, dual, invert_alpha):
    """``_gjs_normal_loss`` of jacobdeasy/geometric-js @ ad5c2ca (vae/models/losses.py), with its
    helpers ``_get_mu_var`` and ``_kl_normal_loss``, transcribed in numpy; per sample instead of
    the batch mean. Its KL takes log-variances and is given variances."""

    def get_mu_var(m_1, v_1, m_2, v_2, a):
        v_a = 1 / ((1 - a) / v_1 + a / v_2)
        return v_a * ((1 - a) * m_1 / v_1 + a * m_2 / v_2), v_a

    def kl_normal_loss(m_1, lv_1, m_2, lv_2):
        return (
            0.5 * (-1 + (lv_2 - lv_1) + np.exp(lv_1) / np.exp(lv_2) + (m_2 - m_1) ** 2 / np.exp(lv_2))
        ).sum(-1)

    var = np.exp(logvar)
    mean_0, var_0 = np.zeros_like(mean), np.ones_like(var)
    mean_a, var_a = get_mu_var(mean, var, mean_0, var_0, 1 - a if invert_alpha else a)
    if dual:
        kl_1, kl_2 = kl_normal_loss(mean_a, var_a, mean, var), kl_normal_loss(mean_a, var_a, mean_0, var_0)
    else:
        kl_1, kl_2 = kl_normal_loss(mean, var, mean_a, var_a), kl_normal_loss(mean_0, var_0, mean_a, var_a)
    return (1 - a) * kl_1 + a * kl_2


@pytest.mark.parametrize(("name", "dual"), [("gjs_reference", False), ("dgjs_reference", True)])
@pytest.mark.parametrize("prime", [True, False])
def test_reference_gjs_is_the_authors_computation_not_eq_17(name, dual, prime):
    mu, logvar = _posterior(11, batch=16, d=5)
    for alpha in (0.1, 0.4, 0.9):
        module = build_divergence(name, alpha=alpha, prime=prime)
        ours = module(mu, logvar)
        expected = _authors_gjs(mu.numpy(), logvar.numpy(), alpha, dual, prime)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
        assert set(module.value_and_parts(mu, logvar)[1]) == set((DGJS if dual else GJS).part_names)
        true = build_divergence(name.removesuffix("_reference"), alpha=alpha, prime=prime)(mu, logvar)
        assert not torch.allclose(ours, true, rtol=1e-2)  # another function of (μ, σ²)
    # small variances read as log-variance ≈ 0: q's collapse is hardly penalised, unlike Eq. 17's
    collapsed = torch.full((1, 5), -12.0, dtype=F64)
    zeros = torch.zeros(1, 5, dtype=F64)
    reference = build_divergence(name, alpha=0.1, prime=prime)(zeros, collapsed)
    true = build_divergence(name.removesuffix("_reference"), alpha=0.1, prime=prime)(zeros, collapsed)
    assert float(reference) < 1.0 < float(true)
