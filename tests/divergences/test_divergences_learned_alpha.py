"""A learned skew: ∂D/∂α of the closed forms against finite differences, finite at α = 0 and 1;
the parameter, its clamp and its value unchanged from the fixed-α divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.divergences.divergence_reference import eq9
from vae_gjs.divergences import DGJS, GJS, gjs_normal

F64 = torch.float64
H = 1e-5


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(6, 4, generator=gen, dtype=F64), 1.5 * torch.randn(6, 4, generator=gen, dtype=F64)


def _fd_derivative(f, alpha: float) -> float:
    """Second-order finite differences of ``f`` at ``alpha``: central inside (0, 1), one-sided
    (-3f(a) + 4f(a±h) - f(a±2h)) / (±2h) at the end points, where f is only defined on one side."""
    if alpha == 0.0:
        return (-3 * f(0.0) + 4 * f(H) - f(2 * H)) / (2 * H)
    if alpha == 1.0:
        return (3 * f(1.0) - 4 * f(1 - H) + f(1 - 2 * H)) / (2 * H)
    return (f(alpha + H) - f(alpha - H)) / (2 * H)


@pytest.mark.parametrize("dual", [False, True], ids=["gjs", "dgjs"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
def test_autograd_derivative_in_alpha_is_the_finite_difference_and_finite_at_the_ends(dual, alpha):
    mu, logvar = _pairs()
    zeros = torch.zeros_like(mu)
    a = torch.tensor(alpha, dtype=F64, requires_grad=True)
    value = gjs_normal(mu, logvar, zeros, zeros, a, dual=dual).sum()
    (grad,) = torch.autograd.grad(value, a)
    assert torch.isfinite(grad)

    def closed_form(x: float) -> float:
        return gjs_normal(mu, logvar, zeros, zeros, x, dual=dual).sum().item()

    assert grad.item() == pytest.approx(_fd_derivative(closed_form, alpha), rel=1e-5, abs=1e-6)
    # the value with a trainable α is bit-for-bit the fixed-α value
    assert value.item() == closed_form(alpha)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_derivative_matches_finite_differences_of_the_papers_eq9(alpha):
    """The same derivative for JS^{Gα'} against Eq. (9) typed in numpy (an independent closed form)."""
    mu, logvar = _pairs()
    a = torch.tensor(alpha, dtype=F64, requires_grad=True)
    zeros = torch.zeros_like(mu)
    (grad,) = torch.autograd.grad(gjs_normal(mu, logvar, zeros, zeros, a).sum(), a)
    eye = np.eye(mu.shape[1])

    def eq9_sum(x: float) -> float:
        return sum(
            eq9(m.numpy(), np.diag(np.exp(lv.numpy())), np.zeros_like(m.numpy()), eye, x, prime=True)
            for m, lv in zip(mu, logvar, strict=True)
        )

    assert grad.item() == pytest.approx(_fd_derivative(eq9_sum, alpha), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("cls", [GJS, DGJS])
def test_learned_alpha_is_one_parameter_with_the_fixed_value_and_finite_gradient(cls):
    mu, logvar = (t.float() for t in _pairs())
    fixed, learned = cls(alpha=0.25), cls(alpha=0.25, learn_alpha=True)
    assert [name for name, _ in learned.named_parameters()] == ["alpha"] and not list(fixed.parameters())
    assert learned.alpha.shape == () and learned.learned() == {"alpha": torch.tensor(0.25)}
    assert (
        fixed.learned() == {} and list(fixed.state_dict()) == [] and list(learned.state_dict()) == ["alpha"]
    )
    value, parts = learned.value_and_parts(mu, logvar)
    expected, expected_parts = fixed.value_and_parts(mu, logvar)
    assert torch.equal(value, expected) and all(torch.equal(parts[k], expected_parts[k]) for k in parts)
    value.mean().backward()
    assert torch.isfinite(learned.alpha.grad)
    for end in (0.0, 1.0):  # the clamp's targets: gradients must stay finite there
        learned.alpha.grad = None
        with torch.no_grad():
            learned.alpha.fill_(end)
        learned(mu, logvar).mean().backward()
        assert torch.isfinite(learned.alpha.grad), end


@pytest.mark.parametrize(("start", "clamped"), [(1.7, 1.0), (-0.4, 0.0), (0.6, 0.6)])
def test_project_clamps_a_learned_alpha_to_the_unit_interval(start, clamped):
    divergence = GJS(alpha=0.5, learn_alpha=True)
    with torch.no_grad():
        divergence.alpha.fill_(start)
    divergence.project_()
    assert divergence.alpha.item() == pytest.approx(clamped) and divergence.alpha.requires_grad
    fixed = GJS(alpha=0.5)
    fixed.project_()  # nothing to clamp
    assert fixed.alpha == 0.5
