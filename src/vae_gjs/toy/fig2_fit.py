"""Figure 2's fitting: one diagonal Gaussian Q fitted to samples from a 2-D mixture of 10
Gaussians P (the plot and the record: :mod:`vae_gjs.toy.fig2`).

Each of forward KL(P‖Q), reverse KL(Q‖P), JS(P‖Q) and JS^{G0.5}(P‖Q) is minimised over the mean
μ and the log-scales log σ of ``Q = N(μ, diag σ²)`` by Adam on Monte Carlo estimates. Every
step draws a minibatch ``x_1..x_B`` uniformly (with replacement) from the fixed data set of
``n_data`` samples of P, and ``z_s = μ + σ ⊙ ε_s`` with ``ε_s ~ N(0, I)`` (reparameterisation).
The mixture density ``p`` is known and used where a density of P is needed.

Estimators (``lp = log p``, ``lq = log q``; see :func:`mc_objectives`):

* forward KL: ``mean_i [lp(x_i) - lq(x_i)]``. Unbiased (x_i ~ P; the data set is an i.i.d. draw
  from P and the minibatch an i.i.d. draw from the data set); only ``-lq`` depends on θ, so this
  is the usual maximum-likelihood gradient, and ``lp`` only makes the value the actual KL.
* reverse KL: ``-H(Q) - mean_s lp(z_s)`` with the closed-form entropy of Q; unbiased, and its
  reparameterised gradient is unbiased.
* JS (Eq. 5): with m = (p+q)/2, ``log(2p/(p+q)) = log 2 + log σ(lp - lq)``, so
  ``JS = log 2 + ½ E_P[log σ(lp - lq)] + ½ E_Q[log σ(lq - lp)]``: one mean over the data
  minibatch and one over the reparameterised Q samples; unbiased, gradients unbiased.
* JS^{Gα} (the paper's α' variant, Eq. 17, intermediate ``M ∝ p^α q^(1-α)`` normalised by
  ``Z_α = ∫ p^α q^(1-α)``; at α = 0.5 it coincides with Nielsen's JS^{Gα}). Since
  ``log m = α lp + (1-α) lq - log Z_α``, the definition ``(1-α) KL(P‖M) + α KL(Q‖M)`` is exactly

      JS^{Gα'}(P‖Q) = (1-α)² KL(P‖Q) + α² KL(Q‖P) + log Z_α,

  and the two KL terms use the estimators above. ``Z_α`` is estimated by importance sampling
  with the *same* two sample sets, i.e. from the equal-weight mixture proposal (P+Q)/2
  (balance heuristic): ``Ẑ = ½ mean_i w(x_i) + ½ mean_s w(z_s)``, ``w = p^α q^(1-α) / ((p+q)/2)``.
  ``Ẑ`` is unbiased for every θ (``½E_P[w] + ½E_Q[w] = ∫ p^α q^(1-α)``) and so is its pathwise
  gradient; by the weighted AM–GM inequality ``w ≤ 2 max(α, 1-α)``, so its variance is bounded.
  ``log Ẑ`` is consistent but biased low for a finite sample (Jensen; the bias is
  ``≈ -Var(Ẑ)/(2Z²) = O(1/B)``), and so is the JS^{G} estimate and its gradient.

Final values are reported twice: a large-sample Monte Carlo estimate (all data, as many Q
samples) and a deterministic 2-D quadrature on a fine grid (:func:`quadrature_objectives`), which
needs no sampling and checks the Monte Carlo estimators.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor

OBJECTIVES: tuple[str, ...] = ("forward_kl", "reverse_kl", "js", "gjs")
LABELS = {
    "forward_kl": r"forward KL$(P \| Q)$",
    "reverse_kl": r"reverse KL$(Q \| P)$",
    "js": r"JS$(P \| Q)$",
    "gjs": r"JS$^{G_{0.5}}(P \| Q)$",
}
ALPHA = 0.5
INIT_SUBSAMPLE = 100  # Q starts at the mean and std of this many data points (as Theis et al.)

# The data distribution P: 10 isotropic Gaussians. One clearly dominant mode (weight 0.40 at
# (2, 1.5)) with three smaller neighbours, and six far, light modes around it.
MIXTURE_WEIGHTS = (0.40, 0.10, 0.10, 0.08, 0.06, 0.06, 0.05, 0.05, 0.05, 0.05)
MIXTURE_MEANS = (
    (2.0, 1.5),
    (3.5, 3.2),
    (0.3, 2.8),
    (3.3, -0.3),
    (-4.0, 3.0),
    (-3.5, -2.5),
    (0.0, -4.5),
    (-5.0, 0.5),
    (4.5, -4.0),
    (-1.5, 5.5),
)
MIXTURE_STDS = (0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Mixture:
    """A mixture of isotropic Gaussians in ``d`` dimensions with known density."""

    weights: Tensor  # [K], sums to one
    means: Tensor  # [K, d]
    stds: Tensor  # [K]

    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` for ``x`` of shape ``[..., d]``."""
        import torch

        d = self.means.shape[-1]
        sq = (x.unsqueeze(-2) - self.means).pow(2).sum(-1)  # [..., K]
        log_comp = -0.5 * sq / self.stds.pow(2) - d * torch.log(self.stds) - 0.5 * d * LOG_2PI
        return torch.logsumexp(log_comp + torch.log(self.weights), dim=-1)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` i.i.d. samples (component drawn by weight, then the Gaussian), shape ``[n, d]``."""
        import torch

        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[-1], generator=generator, dtype=self.means.dtype)
        return self.means[comp] + self.stds[comp, None] * noise

    @property
    def dominant_mean(self) -> Tensor:
        return self.means[int(self.weights.argmax())]

    def moments(self) -> tuple[Tensor, Tensor]:
        """Exact mean and per-dimension standard deviation of the mixture."""
        mean = (self.weights[:, None] * self.means).sum(0)
        second = (self.weights[:, None] * (self.means.pow(2) + self.stds.pow(2)[:, None])).sum(0)
        return mean, (second - mean.pow(2)).sqrt()


def default_mixture() -> Mixture:
    """The fixed 10-component data distribution of Figure 2 (float64)."""
    import torch

    w = torch.tensor(MIXTURE_WEIGHTS, dtype=torch.float64)
    return Mixture(
        weights=w / w.sum(),
        means=torch.tensor(MIXTURE_MEANS, dtype=torch.float64),
        stds=torch.tensor(MIXTURE_STDS, dtype=torch.float64),
    )


def log_normal_diag(x: Tensor, mu: Tensor, log_scale: Tensor) -> Tensor:
    """``log N(x; μ, diag σ²)`` with ``σ = exp(log_scale)``, summed over the last dimension."""
    z = (x - mu) * (-log_scale).exp()
    return (-0.5 * z.pow(2) - log_scale - 0.5 * LOG_2PI).sum(-1)


def entropy_diag(log_scale: Tensor) -> Tensor:
    """Differential entropy of ``N(μ, diag σ²)``: ``Σ_d (log σ_d + ½ log 2πe)``."""
    return (log_scale + 0.5 * (LOG_2PI + 1.0)).sum(-1)


NEEDS = {  # which samples each objective uses: data x_i ~ P, reparameterised z_s ~ Q
    "forward_kl": (True, False),
    "reverse_kl": (False, True),
    "js": (True, True),
    "gjs": (True, True),
}


def mc_objective(
    name: str,
    lp_x: Tensor | None,
    lq_x: Tensor | None,
    lp_z: Tensor | None,
    lq_z: Tensor | None,
    log_scale: Tensor,
    alpha: float = ALPHA,
) -> Tensor:
    """Monte Carlo estimate of one objective (module docstring) from log densities.

    ``lp_x, lq_x``: ``log p``, ``log q`` at data samples ``x_i ~ P``; ``lp_z, lq_z``: at
    reparameterised samples ``z_s ~ Q`` (either pair may be ``None`` where ``NEEDS`` says it is
    unused). ``name`` is one of :data:`OBJECTIVES` or ``"log_z"`` (``log Ẑ_α``).
    """
    import torch
    import torch.nn.functional as F

    if name == "forward_kl":
        return (lp_x - lq_x).mean()
    if name == "reverse_kl":
        return -entropy_diag(log_scale) - lp_z.mean()
    if name == "js":
        return math.log(2) + 0.5 * F.logsigmoid(lp_x - lq_x).mean() + 0.5 * F.logsigmoid(lq_z - lp_z).mean()
    if name == "log_z":

        def log_w(lp: Tensor, lq: Tensor) -> Tensor:  # log [p^α q^(1-α) / ((p+q)/2)]
            return alpha * lp + (1 - alpha) * lq - torch.logaddexp(lp, lq) + math.log(2)

        return torch.logaddexp(
            torch.logsumexp(log_w(lp_x, lq_x), 0) - math.log(lp_x.numel()),
            torch.logsumexp(log_w(lp_z, lq_z), 0) - math.log(lp_z.numel()),
        ) - math.log(2)
    if name == "gjs":
        kl_pq = mc_objective("forward_kl", lp_x, lq_x, lp_z, lq_z, log_scale, alpha)
        kl_qp = mc_objective("reverse_kl", lp_x, lq_x, lp_z, lq_z, log_scale, alpha)
        log_z = mc_objective("log_z", lp_x, lq_x, lp_z, lq_z, log_scale, alpha)
        return (1 - alpha) ** 2 * kl_pq + alpha**2 * kl_qp + log_z
    raise ValueError(f"unknown objective {name!r}; expected one of {OBJECTIVES} or 'log_z'")


def mc_objectives(
    lp_x: Tensor, lq_x: Tensor, lp_z: Tensor, lq_z: Tensor, log_scale: Tensor, alpha: float = ALPHA
) -> dict[str, Tensor]:
    """All of :func:`mc_objective` (the four objectives and ``log Ẑ_α``) on the same samples."""
    return {
        name: mc_objective(name, lp_x, lq_x, lp_z, lq_z, log_scale, alpha) for name in (*OBJECTIVES, "log_z")
    }


def quadrature_objectives(
    mixture: Mixture, mu: Tensor, log_scale: Tensor, alpha: float = ALPHA, n: int = 601
) -> dict[str, float]:
    """All four objectives (and ``log Z_α``) by a Riemann sum on an ``n × n`` grid.

    The grid covers every mixture component and Q to ±9 standard deviations, so the mass left
    outside is negligible; the integrands are smooth and decay like Gaussians, for which the
    equispaced rule converges faster than any power of the spacing. Deterministic; 2-D only.
    """
    import torch

    with torch.no_grad():
        scale = log_scale.exp()
        lo = torch.minimum((mixture.means - 9 * mixture.stds[:, None]).min(0).values, mu - 9 * scale)
        hi = torch.maximum((mixture.means + 9 * mixture.stds[:, None]).max(0).values, mu + 9 * scale)
        axes = [torch.linspace(float(lo[d]), float(hi[d]), n, dtype=mu.dtype) for d in range(2)]
        cell = math.log(float(axes[0][1] - axes[0][0])) + math.log(float(axes[1][1] - axes[1][0]))
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
        lp = mixture.log_prob(grid)
        lq = log_normal_diag(grid, mu, log_scale)
        p, q = (lp + cell).exp(), (lq + cell).exp()  # masses of the cells
        forward_kl = (p * (lp - lq)).sum()
        reverse_kl = (q * (lq - lp)).sum()
        lm = torch.logaddexp(lp, lq) - math.log(2)
        js = 0.5 * (p * (lp - lm)).sum() + 0.5 * (q * (lq - lm)).sum()
        log_z = torch.logsumexp(alpha * lp + (1 - alpha) * lq + cell, 0)
        gjs = (1 - alpha) ** 2 * forward_kl + alpha**2 * reverse_kl + log_z
        out = {"forward_kl": forward_kl, "reverse_kl": reverse_kl, "js": js, "gjs": gjs, "log_z": log_z}
        out["mass_p"], out["mass_q"] = p.sum(), q.sum()
        return {k: float(v) for k, v in out.items()}


@dataclass
class Fit:
    """Result of :func:`fit`: fitted parameters and the per-step training estimates."""

    objective: str
    mu: Tensor
    log_scale: Tensor
    trace: list[float]
    seconds: float


def fit(
    objective: str,
    mixture: Mixture,
    data: Tensor,
    data_log_p: Tensor,
    init: tuple[Tensor, Tensor],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    alpha: float = ALPHA,
) -> Fit:
    """Minimise one objective over ``(μ, log σ)`` by Adam with a cosine-decayed learning rate
    (from ``lr`` to 2% of ``lr``); every step draws fresh data indices and Q noise."""
    import torch

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    start = time.perf_counter()
    mu = init[0].clone().requires_grad_(True)
    log_scale = init[1].clone().requires_grad_(True)
    use_x, use_z = NEEDS[objective]
    n, dim = data.shape
    lp_x = lq_x = lp_z = lq_z = None
    trace: list[float] = []
    optimiser = torch.optim.Adam([mu, log_scale], lr=lr)
    for t in range(steps):
        optimiser.param_groups[0]["lr"] = lr * (
            0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t / max(steps - 1, 1)))
        )
        if use_x:
            idx = torch.randint(n, (batch_size,), generator=generator)
            lp_x, lq_x = data_log_p[idx], log_normal_diag(data[idx], mu, log_scale)
        if use_z:
            eps = torch.randn(batch_size, dim, generator=generator, dtype=data.dtype)
            z = mu + log_scale.exp() * eps
            lp_z, lq_z = mixture.log_prob(z), log_normal_diag(z, mu, log_scale)
        loss = mc_objective(objective, lp_x, lq_x, lp_z, lq_z, log_scale, alpha)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        trace.append(float(loss.detach()))
    return Fit(objective, mu.detach(), log_scale.detach(), trace, time.perf_counter() - start)


def final_mc(
    mixture: Mixture,
    data: Tensor,
    data_log_p: Tensor,
    mu: Tensor,
    log_scale: Tensor,
    generator: torch.Generator,
    alpha: float = ALPHA,
    chunks: int = 10,
) -> dict[str, dict[str, float]]:
    """The Monte Carlo estimators at fixed parameters with all data and as many Q samples.

    Returns ``{"value": ..., "se": ...}``: the estimates from the whole sample and batch-means
    standard errors (spread of the estimates on ``chunks`` disjoint chunks / sqrt(chunks)).
    """
    import torch

    with torch.no_grad():
        z = mu + log_scale.exp() * torch.randn(data.shape, generator=generator, dtype=data.dtype)
        lp_x, lq_x = data_log_p, log_normal_diag(data, mu, log_scale)
        lp_z, lq_z = mixture.log_prob(z), log_normal_diag(z, mu, log_scale)
        value = mc_objectives(lp_x, lq_x, lp_z, lq_z, log_scale, alpha)
        parts = [
            mc_objectives(a, b, c, d, log_scale, alpha)
            for a, b, c, d in zip(
                lp_x.chunk(chunks), lq_x.chunk(chunks), lp_z.chunk(chunks), lq_z.chunk(chunks), strict=True
            )
        ]
        se = {k: float(torch.stack([pt[k] for pt in parts]).std() / math.sqrt(len(parts))) for k in value}
    return {"value": {k: float(v) for k, v in value.items()}, "se": se}


def fit_all(
    *,
    seed: int = 0,
    steps: int = 2000,
    n_data: int = 100_000,
    batch_size: int = 1024,
    lr: float = 0.05,
    objectives: tuple[str, ...] = OBJECTIVES,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Draw the data, fit every objective from the same initialisation, and evaluate the fits."""
    import torch

    mixture = default_mixture()
    gen = torch.Generator().manual_seed(seed)
    data = mixture.sample(n_data, gen)
    data_log_p = mixture.log_prob(data)
    sub = data[:INIT_SUBSAMPLE]
    init = (sub.mean(0), sub.std(0).log())

    fits: dict[str, Any] = {}
    results: dict[str, Fit] = {}
    for k, name in enumerate(objectives):
        opt_gen = torch.Generator().manual_seed(seed * 1000 + 17 + k)
        res = fit(
            name,
            mixture,
            data,
            data_log_p,
            init,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            generator=opt_gen,
        )
        results[name] = res
        entry: dict[str, Any] = {
            "label": LABELS[name],
            "mean": res.mu.tolist(),
            "scale": res.log_scale.exp().tolist(),
            "distance_to_dominant_mode": float((res.mu - mixture.dominant_mean).norm()),
            "train_estimate_last_100_steps": sum(res.trace[-100:]) / len(res.trace[-100:])
            if res.trace
            else None,
            "fit_seconds": res.seconds,
        }
        if evaluate:
            mc = final_mc(
                mixture, data, data_log_p, res.mu, res.log_scale, torch.Generator().manual_seed(seed + 7)
            )
            quad = quadrature_objectives(mixture, res.mu, res.log_scale)
            entry["objective_mc"] = mc["value"][name]
            entry["objective_mc_se"] = mc["se"][name]
            entry["objective_quadrature"] = quad[name]
            entry["all_objectives_quadrature"] = {o: quad[o] for o in OBJECTIVES}
            entry["all_objectives_mc"] = {o: mc["value"][o] for o in OBJECTIVES}
            entry["all_objectives_mc_se"] = {o: mc["se"][o] for o in OBJECTIVES}
            entry["log_z_quadrature"] = quad["log_z"]
            entry["log_z_mc"] = mc["value"]["log_z"]
            entry["quadrature_mass_p_q"] = [quad["mass_p"], quad["mass_q"]]
        fits[name] = entry

    data_mean, data_std = data.mean(0), data.std(0)
    true_mean, true_std = mixture.moments()
    return {
        "mixture": mixture,
        "data": data,
        "init": init,
        "results": results,
        "fits": fits,
        "data_summary": {
            "n": n_data,
            "sample_mean": data_mean.tolist(),
            "sample_std": data_std.tolist(),
            "mixture_mean": true_mean.tolist(),
            "mixture_std": true_std.tolist(),
        },
    }
