"""The paper's printed Proposition 2 (Eqs. 23-26) against the definitions (docs/divergences.md §6).

N1 = N(μ, σ²) in one coordinate, N2 = N(0, 1). The printed formulas are typed here from the paper;
the definitions come from quadrature (divergence_reference.Quad1D), never from a closed form.
Claims checked:

1. Eqs. (25)-(26) as printed are the *non-primed* intermediate N_α ∝ N1^(1-α) N2^α (its quadrature
   moments), so Eq. (23) with them is Nielsen's JS^{Gα}: it equals that definition, differs from
   the paper's JS^{Gα'} (Eq. 17) away from α = 0.5, and tends to 0 (not to the KLs) at both ends.
2. Eq. (23) with α → 1-α in Eqs. (25)-(26) only (the primed intermediate, Eq. 16) equals JS^{Gα'}.
3. Eq. (24) as printed has μ²/σ² where Eq. (11) has (1-α)μ²/σ²: it exceeds Nielsen's dual by
   exactly αμ²/(2σ²), and matches neither dual definition; with (1-α)μ²/σ² it is Nielsen's dual.
4. The primed dual has no -log Z shortcut: JS*^{Gα'} = -log Z_{α'} + (2α-1)(KL(N_α'‖N2) -
   KL(N_α'‖N1)), which equals -log Z_{α'} only at α = 0.5; Eq. (24) with α → 1-α is not it either
   (and can even be negative).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import simpson

from tests.divergences.divergence_reference import Quad1D
from vae_gjs.divergences import gjs_normal

SETTINGS = [(1.0, 0.5), (-2.0, 3.0), (0.5, 0.1), (1.5, 2.0)]
ALPHAS = [0.1, 0.3, 0.5, 0.9]
DOCS_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "check_printed_equations.py"


def _load_docs_script():  # docs/ is not a package: load the script that prints the docs' tables
    spec = importlib.util.spec_from_file_location("check_printed_equations", DOCS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The printed Eqs. 23-26, typed once from the paper in docs/check_printed_equations.py.
PRINTED = _load_docs_script()
printed_intermediate = PRINTED.eq25_26


def printed_eq23(mu: float, var: float, alpha: float, a: float) -> float:
    """Eq. (23) as printed with the intermediate of Eqs. (25)-(26) at skew ``a``."""
    return PRINTED.eq23(mu, var, alpha, *printed_intermediate(mu, var, a))


def printed_eq24(mu: float, var: float, alpha: float, a: float, mu2_weight: float = 1.0) -> float:
    """Eq. (24) as printed (``mu2_weight = 1``) with the intermediate of Eqs. (25)-(26) at skew ``a``."""
    return PRINTED.eq24(mu, var, alpha, *printed_intermediate(mu, var, a), weight_mu2=mu2_weight)


def _library(mu: float, var: float, alpha: float, dual: bool, prime: bool = True) -> float:
    t = torch.tensor
    zeros = torch.zeros(1, dtype=torch.float64)
    return float(
        gjs_normal(
            t([mu], dtype=torch.float64),
            t([math.log(var)], dtype=torch.float64),
            zeros,
            zeros,
            alpha,
            dual,
            prime,
        )
    )


@pytest.mark.parametrize(("mu", "var"), SETTINGS)
def test_eqs25_26_as_printed_are_the_non_primed_intermediate(mu, var):
    quad = Quad1D(mu, var, 0.0, 1.0)
    for alpha in ALPHAS:
        mean_a, var_a = printed_intermediate(mu, var, alpha)
        ref_mean, ref_var = quad.moments(alpha)  # n1^(1-α) n2^α normalised: Nielsen's N_α
        assert mean_a == pytest.approx(ref_mean, abs=1e-9)
        assert var_a == pytest.approx(ref_var, rel=1e-8)
        if alpha != 0.5:
            primed_mean, primed_var = quad.moments(1 - alpha)  # the paper's N_α' (Eq. 16)
            assert abs(var_a - primed_var) > 1e-3 or abs(mean_a - primed_mean) > 1e-3


@pytest.mark.parametrize(("mu", "var"), SETTINGS)
def test_printed_eq23_is_nielsens_js_not_the_primed_one(mu, var):
    quad = Quad1D(mu, var, 0.0, 1.0)
    for alpha in ALPHAS:
        printed = printed_eq23(mu, var, alpha, a=alpha)
        assert printed == pytest.approx(quad.skew_js(alpha, dual=False, prime=False), abs=1e-9)
        if alpha != 0.5:
            assert abs(printed - quad.skew_js(alpha, dual=False, prime=True)) > 1e-2
    # the printed form tends to 0 at both ends (Eq. 14), not to KL(N1‖N2) / KL(N2‖N1) (Eq. 18)
    kl_12, kl_21 = quad.kl(), quad.kl(reverse=True)
    for eps in (1e-6, 1e-9):
        assert abs(printed_eq23(mu, var, eps, a=eps)) < 1e-4 * (1 + kl_12)
        assert abs(printed_eq23(mu, var, 1 - eps, a=1 - eps)) < 1e-4 * (1 + kl_21)
    assert min(kl_12, kl_21) > 0.1


@pytest.mark.parametrize(("mu", "var"), SETTINGS)
def test_eq23_with_primed_intermediate_is_the_definition_and_the_library(mu, var):
    quad = Quad1D(mu, var, 0.0, 1.0)
    for alpha in [*ALPHAS, 1e-6, 1 - 1e-6]:
        swapped = printed_eq23(mu, var, alpha, a=1 - alpha)
        assert swapped == pytest.approx(quad.skew_js(alpha, dual=False, prime=True), abs=1e-9)
        assert swapped == pytest.approx(_library(mu, var, alpha, dual=False), abs=1e-9)
    assert printed_eq23(mu, var, 1e-9, a=1 - 1e-9) == pytest.approx(quad.kl(), rel=1e-6)
    assert printed_eq23(mu, var, 1 - 1e-9, a=1e-9) == pytest.approx(quad.kl(reverse=True), rel=1e-6)


@pytest.mark.parametrize(("mu", "var"), SETTINGS)
def test_printed_eq24_is_off_by_alpha_mu2_over_2var(mu, var):
    quad = Quad1D(mu, var, 0.0, 1.0)
    for alpha in ALPHAS:
        nielsen_dual = quad.skew_js(alpha, dual=True, prime=False)
        primed_dual = quad.skew_js(alpha, dual=True, prime=True)
        printed = printed_eq24(mu, var, alpha, a=alpha)
        assert printed - nielsen_dual == pytest.approx(alpha * mu**2 / (2 * var), abs=1e-9)
        assert abs(printed - primed_dual) > 1e-2  # not the primed dual either (not even at 0.5)
        # with Eq. (11)'s (1-α)μ²/σ² it is Nielsen's dual, i.e. -log Z_α
        corrected = printed_eq24(mu, var, alpha, a=alpha, mu2_weight=1 - alpha)
        assert corrected == pytest.approx(nielsen_dual, abs=1e-9)
        assert corrected == pytest.approx(-quad.log_normaliser(alpha), abs=1e-9)
    # at α → 1 the printed form tends to μ²/(2σ²): neither 0 (Eq. 15) nor a KL (Eq. 19)
    assert printed_eq24(mu, var, 1.0, a=1.0) == pytest.approx(mu**2 / (2 * var))


@pytest.mark.parametrize(("mu", "var"), SETTINGS)
def test_primed_dual_has_no_log_normaliser_shortcut(mu, var):
    quad = Quad1D(mu, var, 0.0, 1.0)
    for alpha in ALPHAS:
        primed_dual = quad.skew_js(alpha, dual=True, prime=True)
        assert _library(mu, var, alpha, dual=True) == pytest.approx(primed_dual, abs=1e-9)
        neg_log_z = -quad.log_normaliser(1 - alpha)  # Z_{α'} = ∫ n1^α n2^(1-α)
        # E_{N_α'}[log n1 - log n2] = KL(N_α'‖N2) - KL(N_α'‖N1), from the dual's own parts
        x, lp1, lp2, lm = quad.geometric_mean(1 - alpha)
        cross = simpson(np.exp(lm) * (lp1 - lp2), x=x)
        assert primed_dual == pytest.approx(neg_log_z + (2 * alpha - 1) * cross, abs=1e-9)
        if alpha == 0.5:
            assert primed_dual == pytest.approx(neg_log_z, abs=1e-9)
        else:
            assert abs(primed_dual - neg_log_z) > 1e-2
            assert abs(printed_eq24(mu, var, alpha, a=1 - alpha) - primed_dual) > 1e-2
    # Eq. (24) with α → 1-α in Eqs. (25)-(26) can be negative, so it is no divergence at all
    assert printed_eq24(-2.0, 3.0, 0.9, a=0.1) < 0


def test_docs_script_table_agrees_with_these_checks():
    """docs/check_printed_equations.py (whose output is pasted into docs/divergences.md) computes
    the same quantities; its numbers must agree with this module's."""
    module = PRINTED
    rows = module.rows()
    assert {(r["mu"], r["var"]) for r in rows} >= {(1.0, 0.5)}
    for r in rows:
        mu, var, alpha = r["mu"], r["var"], r["alpha"]
        quad = Quad1D(mu, var, 0.0, 1.0)
        for key, dual, prime in [
            ("js_nielsen", False, False),
            ("js_prime", False, True),
            ("dual_nielsen", True, False),
            ("dual_prime", True, True),
        ]:
            assert r[key] == pytest.approx(quad.skew_js(alpha, dual, prime), abs=1e-9), key
        assert r["lib_js"] == pytest.approx(r["js_prime"], abs=1e-9)
        assert r["lib_dual"] == pytest.approx(r["dual_prime"], abs=1e-9)
    table = module.tables(rows)
    assert table.count("\n|") >= 2 * len(rows)
