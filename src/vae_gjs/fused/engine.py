"""The fused training engine: N VAEs that share data, architecture and seed, trained as one.

Each step, for one shared batch ``x``:

1. every member encodes ``x`` (:class:`~vae_gjs.fused.stack.StackedNets`: all at once with
   ``vmap`` on a GPU, member by member on a CPU);
2. each member's reparameterisation noise ``torch.randn_like(mu)`` is drawn in its own random
   stream (:class:`~vae_gjs.fused.rng.MemberStreams`) by the call ``VAE.per_image_terms`` makes:
   once for all members whose streams are at one point, when their divergences draw nothing
   (:meth:`~vae_gjs.divergences.base.Divergence.stack_key`); these divergences are evaluated
   in one call per kind (:meth:`~vae_gjs.divergences.base.Divergence.stacked`: all KL(q‖p) and
   β-VAE members together, all JS^{Gα'} members with their own α, ...); a divergence that draws
   (MMD) is evaluated member by member inside the member's stream, after its noise, as
   ``VAE.per_image_terms`` orders them;
3. every member decodes its own codes, and its loss is ``rec.mean() + λ·div.mean()``
   (Eq. 22), the separate run's expression with each member's own λ;
4. the sum of the live members' losses is back-propagated, and the members' optimiser (Adam by
   default) steps every live member's own slices of the stacked weights.

One optimiser steps every live member's own slices of the stacked weights
(:class:`~vae_gjs.fused.optimiser.MembersOptimiser`): the members' own ``conf/module`` optimiser,
refused unless its step is elementwise, so that it is N independent optimisers (the launcher fuses
only members whose optimiser configs are equal), and a member on a CPU trains bit for bit as its
separate run. A member whose loss is not finite is stopped alone: it is marked failed, its slices
get no gradient from that step on (so its weights and optimiser state stay as they were), and the
others go on. What a member's checkpoint holds is :mod:`vae_gjs.fused.checkpoint`'s.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from vae_gjs.errors import NonFiniteLossError
from vae_gjs.fused.optimiser import MembersOptimiser
from vae_gjs.fused.rng import MemberStreams
from vae_gjs.fused.stack import StackedNets
from vae_gjs.models.precision import network_outputs
from vae_gjs.module import VAE, PerImageTerms, non_finite_error

#: Per-image metrics averaged over a training epoch (as ``VAE`` logs them).
TRAIN_METRICS = ("rec", "div", "loss")


@dataclass
class Progress:
    """Where the group is: the epoch being trained and the optimiser steps taken."""

    epoch: int = 0
    global_step: int = 0
    #: Members stopped by a non-finite loss: index -> the error.
    failed: dict[int, NonFiniteLossError] = field(default_factory=dict)
    #: index -> the optimiser steps the member had taken when it stopped.
    failed_step: dict[int, int] = field(default_factory=dict)

    def member_step(self, member: int) -> int:
        """Optimiser steps member ``member`` has taken (fewer than the group's if it stopped)."""
        return self.failed_step.get(member, self.global_step)


class FusedEngine:
    """Trains ``modules`` (``VAE``s whose nets have one architecture) as one stacked model.

    Args:
        modules: the members, each built exactly as its separate run builds it; the engine reads
            their nets (initial weights), divergences, λ, likelihood and learning rate.
        streams: each member's random stream (see :mod:`vae_gjs.fused.rng`).
        device: where the stacked model runs.
        batched: the members' layers in one call each (``vmap``) or member by member
            (:class:`~vae_gjs.fused.stack.StackedNets`); by default batched on a GPU and member
            by member on a CPU, the faster way on each (docs/fused.md).
    """

    def __init__(
        self, modules: list[VAE], streams: MemberStreams, device: torch.device, batched: bool | None = None
    ) -> None:
        for what, values in (
            ("likelihood", {module.likelihood.name for module in modules}),
            ("precision", {module.precision for module in modules}),
        ):
            if len(values) != 1:
                raise ValueError(f"fused members need one {what}, got {sorted(values)}")
        if any(p.requires_grad for module in modules for p in module.divergence.parameters()):
            raise ValueError("fused members cannot train divergence parameters (run them separately)")
        self.modules = modules
        self.size = len(modules)
        self.device = device
        batched = device.type != "cpu" if batched is None else batched
        self.precision = modules[0].precision
        nets = [module.net for module in modules]
        self.nets = StackedNets(nets, device, batched, self.precision).to(device)
        self.divergences = [module.divergence.to(device) for module in modules]
        self.lams = [module.lam for module in modules]
        self._lams = torch.tensor(self.lams, dtype=torch.float32, device=device)
        kinds: dict[Hashable, list[int]] = {}
        for member, divergence in enumerate(self.divergences):
            kinds.setdefault(divergence.stack_key(), []).append(member)
        #: Members evaluated one by one, in their own streams (divergences that may draw).
        self._alone = kinds.pop(None, [])
        #: Members evaluated together, one list per kind of divergence.
        self._stacks = list(kinds.values())
        self._stacked = sorted(member for members in self._stacks for member in members)
        #: Where member m's divergence row lands in the concatenation (stacks, then the others).
        order = [*itertools.chain(*self._stacks), *self._alone]
        self._rows = torch.tensor(sorted(range(self.size), key=order.__getitem__), device=device)
        self.likelihood = modules[0].likelihood
        self.members_optimiser = MembersOptimiser(modules[0], self.nets, self.size)
        self.streams = streams
        self.progress = Progress()

    # ------------------------------------------------------------------ one step

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every member's ``(mu, logvar)`` ``[N, B, d]`` (float32, computed in the run's precision)."""
        return network_outputs(self.precision, self.device, self.nets.encode, x)

    def _decode(self, z: Tensor) -> Tensor:
        """Every member's logits ``[N, B, ...]`` (float32, computed in the run's precision)."""
        return network_outputs(self.precision, self.device, self.nets.decode, z)

    def _reconstruction(self, logits: Tensor, x: Tensor) -> Tensor:
        """``likelihood.loss`` of every member's logits ``[N, B, ...]`` against ``x`` -> ``[N, B]``."""
        n, b = logits.shape[:2]
        target = x.unsqueeze(0).expand(n, *x.shape).reshape(n * b, *x.shape[1:])
        return self.likelihood.loss(logits.reshape(n * b, *logits.shape[2:]), target).view(n, b)

    def train_terms(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every member's loss ``[N]``, reconstruction ``[N, B]`` and divergence ``[N, B]`` for the
        training batch ``x`` (z sampled with each member's own noise)."""
        mu, logvar = self._encode(x)
        noise: dict[int, Tensor] = {}
        for members in self.streams.alike(self._stacked):
            with self.streams.together(members):
                drawn = torch.randn_like(mu[members[0]])
            for member in members:
                noise[member] = drawn
        divs = [
            type(self.divergences[members[0]]).stacked(
                [self.divergences[m] for m in members], mu[members], logvar[members]
            )
            for members in self._stacks
        ]
        for member in self._alone:
            with self.streams.member(member):  # the draws, in the order VAE._step makes them
                noise[member] = torch.randn_like(mu[member])
                divs.append(self.divergences[member].value_and_parts(mu[member], logvar[member])[0][None])
        z = mu + torch.exp(0.5 * logvar) * torch.stack([noise[m] for m in range(self.size)])
        rec = self._reconstruction(self._decode(z), x)
        div = torch.cat(divs)[self._rows]
        losses = rec.mean(1) + self._lams * div.mean(1)
        return losses, rec, div

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The one optimiser of the members' slices (:class:`~vae_gjs.fused.optimiser.MembersOptimiser`)."""
        return self.members_optimiser.optimizer

    @property
    def alive(self) -> list[int]:
        """The members still training (not stopped by a non-finite loss)."""
        return [m for m in range(self.size) if m not in self.progress.failed]

    def step(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, list[int]]:
        """One optimiser step of every live member on batch ``x``. Returns the losses ``[N]``,
        reconstruction and divergence ``[N, B]``, and the members that failed at this step
        (their weights are those before the step, and stay so)."""
        losses, rec, div = self.train_terms(x)
        alive = self.alive
        newly_failed = []
        finite = torch.isfinite(losses)
        if not bool(finite[alive].all()):  # one device sync a step, as a separate run's check
            for member in alive:
                if not bool(finite[member]):
                    self.progress.failed[member] = non_finite_error(
                        self.progress.global_step, self.progress.epoch, rec[member], div[member]
                    )
                    self.progress.failed_step[member] = self.progress.global_step
                    newly_failed.append(member)
            alive = self.alive
        self.nets.zero_grad(set_to_none=True)
        if alive:
            losses[alive].sum().backward()
            self.members_optimiser.step([param.grad for param in self.nets.parameters()], alive)
            self.progress.global_step += 1
        return losses, rec, div, newly_failed

    # ------------------------------------------------------------------ epochs

    def train_epoch(
        self,
        batches: Iterable[tuple[Tensor, Tensor]],
        n_batches: int,
        max_steps: int,
        on_failure: Callable[[int, NonFiniteLossError], None],
        stop: Callable[[], bool] = lambda: False,
    ) -> dict[int, dict[str, float]]:
        """Train one epoch over the first ``n_batches`` of ``batches`` (stopping at ``max_steps``
        optimiser steps if > 0, or after the step at which ``stop()`` first answers true: a
        signal). Returns each live member's epoch means ``train/rec``, ``train/div``,
        ``train/loss`` and ``time/epoch_s`` (the group's seconds)."""
        started = time.perf_counter()
        sums = torch.zeros(self.size, len(TRAIN_METRICS), dtype=torch.float32, device=self.device)
        images = 0
        for x, _ in itertools.islice(batches, n_batches):
            x = x.to(self.device, non_blocking=True)
            _, rec, div, newly_failed = self.step(x)
            for member in newly_failed:
                on_failure(member, self.progress.failed[member])
            if not self.alive:
                break
            with torch.no_grad():
                sums += torch.stack([rec.sum(1), div.sum(1), (rec + self._lams[:, None] * div).sum(1)], dim=1)
            images += x.shape[0]
            if 0 < max_steps <= self.progress.global_step or stop():
                break
        seconds = time.perf_counter() - started
        means = (sums / max(images, 1)).tolist()
        return {
            member: {
                **{f"train/{name}": value for name, value in zip(TRAIN_METRICS, means[member], strict=True)},
                "time/epoch_s": seconds,
            }
            for member in self.alive
        }

    @torch.inference_mode()
    def test(self, batches: Iterable[tuple[Tensor, Tensor]], n_batches: int) -> dict[int, dict[str, float]]:
        """Each live member's test metrics with z = μ, as ``VAE.test_step`` logs them
        (:meth:`vae_gjs.module.PerImageTerms.metrics`: ``test/rec``, ``test/div``, ``test/loss``,
        ``test/kl_qp`` and the divergence's parts), averaged over the images."""
        sums: list[dict[str, Tensor]] = [{} for _ in range(self.size)]
        images = 0
        for x, _ in itertools.islice(batches, n_batches):
            x = x.to(self.device, non_blocking=True)
            mu, logvar = self._encode(x)
            logits = self._decode(mu)
            rec = self._reconstruction(logits, x)
            for member in self.alive:
                with self.streams.member(member):  # divergences that sample (MMD) draw here
                    div, parts = self.divergences[member].value_and_parts(mu[member], logvar[member])
                loss = rec[member] + self.lams[member] * div
                terms = PerImageTerms(
                    mu[member], logvar[member], logits[member], rec[member], div, loss, parts
                )
                for name, values in terms.metrics().items():
                    key = f"test/{name}"
                    sums[member][key] = sums[member].get(key, 0) + values.sum()
            images += x.shape[0]
        return {
            member: {key: float(total) / images for key, total in sums[member].items()}
            for member in self.alive
        }

    # ------------------------------------------------------------------ one member's state

    def member_net(self, member: int) -> nn.Module:
        """Member ``member``'s own network (built on the CPU) holding its current weights."""
        net = self.modules[member].net
        net.load_state_dict(self.nets.member_state(member))
        return net

    def member_weights(self, member: int) -> dict[str, Tensor]:
        """Member ``member``'s ``VAE.state_dict()`` (``net.*`` keys), on the CPU."""
        self.member_net(member)
        return {key: value.detach().cpu().clone() for key, value in self.modules[member].state_dict().items()}

    def member_optimizer_state(self, member: int) -> dict[str, Any]:
        """Member ``member``'s optimiser state as its separate run's ``optimizer.state_dict()``."""
        return self.members_optimiser.member_state(member)

    @torch.no_grad()
    def load_member(self, member: int, weights: dict[str, Tensor], optimizer: dict[str, Any]) -> None:
        """Put a separate-run checkpoint's weights and optimiser state into member ``member``."""
        self.nets.load_member(
            member,
            {key.removeprefix("net."): value for key, value in weights.items() if key.startswith("net.")},
        )
        self.members_optimiser.load_member(member, optimizer)
