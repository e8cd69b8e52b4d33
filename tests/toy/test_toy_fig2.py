"""Figure 2: the estimators are sound (checked against closed forms when P is Gaussian) and a
cheap run writes the PNG and JSON with the expected qualitative ordering of the fits."""

from __future__ import annotations

import json
import math

import pytest
import torch

from vae_gjs.divergences import gjs_normal, kl_normal
from vae_gjs.toy import fig2, fig2_fit

P_MEAN = torch.tensor([0.5, -1.0], dtype=torch.float64)
P_STD = 0.8
Q_MEAN = torch.tensor([1.5, 0.0], dtype=torch.float64)
Q_LOG_SCALE = torch.log(torch.tensor([1.2, 0.6], dtype=torch.float64))


def _gaussian_p() -> fig2_fit.Mixture:
    """P = N(P_MEAN, P_STD² I) written as a one-component mixture."""
    return fig2_fit.Mixture(
        weights=torch.ones(1, dtype=torch.float64),
        means=P_MEAN[None],
        stds=torch.tensor([P_STD], dtype=torch.float64),
    )


def _closed_forms(alpha: float) -> dict[str, float]:
    p_logvar = torch.full((2,), 2 * math.log(P_STD), dtype=torch.float64)
    q_logvar = 2 * Q_LOG_SCALE
    return {
        "forward_kl": float(kl_normal(P_MEAN, p_logvar, Q_MEAN, q_logvar)),
        "reverse_kl": float(kl_normal(Q_MEAN, q_logvar, P_MEAN, p_logvar)),
        "gjs": float(gjs_normal(P_MEAN, p_logvar, Q_MEAN, q_logvar, alpha, prime=True)),
    }


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_quadrature_and_gjs_identity_match_closed_forms(alpha: float) -> None:
    """JS^{Gα'}(P‖Q) = (1-α)² KL(P‖Q) + α² KL(Q‖P) + log ∫p^α q^(1-α), on the 2-D grid, equals
    the closed form gjs_normal (Eq. 17) when P is Gaussian; the KL terms equal kl_normal."""
    quad = fig2_fit.quadrature_objectives(_gaussian_p(), Q_MEAN, Q_LOG_SCALE, alpha=alpha)
    assert quad["mass_p"] == pytest.approx(1.0, abs=1e-10)
    assert quad["mass_q"] == pytest.approx(1.0, abs=1e-10)
    for name, value in _closed_forms(alpha).items():
        assert quad[name] == pytest.approx(value, abs=1e-8), name
    assert 0.0 < quad["js"] < math.log(2)


@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_mc_estimators_agree_with_closed_forms(alpha: float) -> None:
    """The training estimators (data samples of P, reparameterised samples of Q) with 100k samples
    land within a few standard errors of the closed forms (and of the quadrature JS)."""
    mixture = _gaussian_p()
    gen = torch.Generator().manual_seed(3)
    data = mixture.sample(100_000, gen)
    mc = fig2_fit.final_mc(mixture, data, mixture.log_prob(data), Q_MEAN, Q_LOG_SCALE, gen, alpha=alpha)
    reference = _closed_forms(alpha)
    reference["js"] = fig2_fit.quadrature_objectives(mixture, Q_MEAN, Q_LOG_SCALE)["js"]
    for name, value in reference.items():
        # log Ẑ is biased low by O(1/n); with 100k bounded weights that is far below 1e-4.
        assert abs(mc["value"][name] - value) < 5 * mc["se"][name] + 1e-4, name


def test_mixture_sampler_matches_density() -> None:
    mixture = fig2_fit.default_mixture()
    assert float(mixture.weights.sum()) == pytest.approx(1.0)
    assert float(mixture.weights.max()) >= 3 * float(mixture.weights.sort().values[-2])  # dominant
    data = mixture.sample(100_000, torch.Generator().manual_seed(0))
    mean, std = mixture.moments()
    assert torch.allclose(data.mean(0), mean, atol=0.03)
    assert torch.allclose(data.std(0), std, atol=0.03)
    quad = fig2_fit.quadrature_objectives(mixture, mean, std.log())
    assert quad["mass_p"] == pytest.approx(1.0, abs=1e-8)


@pytest.fixture(scope="module")
def cheap_run(tmp_path_factory) -> tuple[dict, object]:
    out = tmp_path_factory.mktemp("fig2")
    fig2.run(out, seed=1, steps=150, n_data=10_000, batch_size=256, dpi=50)
    return json.loads((out / "fig2.json").read_text()), out


def test_fig2_writes_png_and_json(cheap_run) -> None:
    summary, out = cheap_run
    assert sorted(p.name for p in out.iterdir()) == ["fig2.json", "fig2.png"]  # no temporaries left
    assert (out / "fig2.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["config"]["steps"] == 150 and summary["config"]["seed"] == 1
    assert set(summary["fits"]) == set(fig2.OBJECTIVES)
    for entry in summary["fits"].values():
        assert len(entry["mean"]) == 2 and len(entry["scale"]) == 2
        assert all(s > 0 for s in entry["scale"])
        # large-sample Monte Carlo value and deterministic quadrature agree
        assert (
            abs(entry["objective_mc"] - entry["objective_quadrature"]) < 5 * entry["objective_mc_se"] + 5e-3
        )


def test_fig2_qualitative_ordering(cheap_run) -> None:
    """Forward KL covers everything (moment matching), reverse KL sits on the dominant mode, JS and
    JS^{G0.5} in between, JS^{G0.5} centred near the dominant mode and wider than reverse KL; every
    fit is the best of the four fits under its own objective."""
    summary, _ = cheap_run
    fits = summary["fits"]
    area = {k: math.prod(v["scale"]) for k, v in fits.items()}
    dist = {k: v["distance_to_dominant_mode"] for k, v in fits.items()}

    # forward KL optimum of a diagonal Gaussian is moment matching
    assert fits["forward_kl"]["mean"] == pytest.approx(summary["data"]["sample_mean"], abs=0.15)
    assert fits["forward_kl"]["scale"] == pytest.approx(summary["data"]["sample_std"], abs=0.15)
    assert area["forward_kl"] > area["gjs"] > area["js"] > area["reverse_kl"]
    assert dist["reverse_kl"] < 0.3 and max(fits["reverse_kl"]["scale"]) < 1.0
    assert dist["gjs"] < 0.6 < dist["forward_kl"]
    for name, entry in fits.items():
        own = entry["objective_quadrature"]
        others = [fits[o]["all_objectives_quadrature"][name] for o in fits if o != name]
        assert own < min(others), name
