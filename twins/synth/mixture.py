"""Latent-class (finite mixture) synthesiser fitted to noisy marginals with torch.

Model: K classes with weights ``pi``; within a class every attribute is an independent
categorical ``theta_a[k]``. A clique's implied marginal is ``sum_k pi_k prod_a theta_a[k]``,
so persona-driven correlations between any attributes are captured (a tree of 2-way
marginals only carries the correlations along its edges).

Fit: minimise the Gaussian negative log-likelihood of the released marginals,
``0.5 * sum_m sum_cells (N p_m - y_m)^2 / var_m`` with ``N`` the DP-estimated total, over
softmax parameters, with Adam (cosine-decayed learning rate) from several seeded starts
around the noisy 1-way marginals. K is chosen among ``classes`` by AIC on that likelihood
(the noise variances are known, so the likelihood is exact up to the model). Deterministic:
seeded torch generator, CPU, at most ``threads`` threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twins.schema import Domain
from twins.synth.base import MixtureModel, estimate_total, one_way_estimates
from twins.synth.independent import constant_table, require_measured
from twins.workload import Measurement

if TYPE_CHECKING:
    import torch

__all__ = ["MixtureSynthesiser"]

_PAD = -1e4  # logit of padded levels: softmax gives exactly 0 in float64
_EINSUM = {1: "k,mka->ma", 2: "k,mka,mkb->mab", 3: "k,mka,mkb,mkc->mabc"}


@dataclass(frozen=True)
class _Group:
    """All measured cliques of one size, padded to a common level count."""

    attrs: torch.Tensor    # (M, s) attribute indices into the free attributes
    target: torch.Tensor   # (M, C**s) noisy counts / N, zero on padded cells
    weight: torch.Tensor   # (M, C**s) N^2 / var on real cells, 0 on padding


def _groups(measurements: Sequence[Measurement], domain: Domain, free: list[str],
            total: float, cmax: int) -> list[_Group]:
    import torch  # imported here so owner-side users of twins never load torch

    pos = {n: i for i, n in enumerate(free)}
    out = []
    for size in sorted({len(m.clique) for m in measurements}):
        if size not in _EINSUM:
            raise ValueError(f"mixture: cliques of size {size} are not supported (max 3)")
        ms = [m for m in measurements if len(m.clique) == size]
        target = np.zeros((len(ms),) + (cmax,) * size)
        weight = np.zeros_like(target)
        for r, m in enumerate(ms):
            shape = tuple(domain[n].cardinality for n in m.clique)
            box: tuple[Any, ...] = (r, *(slice(0, c) for c in shape))
            target[box] = np.asarray(m.values, dtype=float).reshape(shape) / total
            # A tiny variance floor keeps exact (noise-free) measurements usable.
            weight[box] = total**2 / (m.variance + 1e-2)
        attrs = torch.tensor([[pos[n] for n in m.clique] for m in ms], dtype=torch.long)
        out.append(_Group(attrs, torch.from_numpy(target.reshape(len(ms), -1)),
                          torch.from_numpy(weight.reshape(len(ms), -1))))
    return out


def _nll(logit_pi: torch.Tensor, logits: torch.Tensor, groups: list[_Group]) -> torch.Tensor:
    import torch

    pi = torch.softmax(logit_pi, 0)
    theta = torch.softmax(logits, -1)                     # (D, K, C)
    loss = torch.zeros((), dtype=logits.dtype)
    for g in groups:
        s = g.attrs.shape[1]
        parts = [theta[g.attrs[:, j]] for j in range(s)]  # each (M, K, C)
        p = torch.einsum(_EINSUM[s], pi, *parts).reshape(g.target.shape)
        loss = loss + 0.5 * (g.weight * (p - g.target) ** 2).sum()
    return loss


@dataclass(frozen=True, kw_only=True)
class MixtureSynthesiser:
    """Latent-class synthesiser; see the module docstring."""

    classes: tuple[int, ...] = (16, 32, 64)
    restarts: int = 1
    steps: int = 1000
    lr: float = 0.08
    init_scale: float = 1.0
    seed: int = 0
    threads: int = 1  # tiny tensors: a second thread adds barrier waits, not speed
    name: str = "mixture"

    def __post_init__(self) -> None:
        if not self.classes or any(k < 1 for k in self.classes):
            raise ValueError(f"MixtureSynthesiser.classes: need K >= 1, got {self.classes}")
        if self.restarts < 1 or self.steps < 1:
            raise ValueError("MixtureSynthesiser.restarts/steps: must be >= 1, got "
                             f"{self.restarts}/{self.steps}")
        if not 1 <= self.threads <= 2:
            raise ValueError(f"MixtureSynthesiser.threads: 1 or 2, got {self.threads}")

    def fit(self, measurements: Sequence[Measurement], domain: Domain, *,
            constants: Mapping[str, int] | None = None,
            support: Mapping[str, Collection[int]] | None = None) -> MixtureModel:
        constants = require_measured(measurements, domain, constants, "mixture")
        import torch

        torch.set_num_threads(self.threads)
        free = [n for n in domain.names if n not in constants]
        total = estimate_total(measurements)
        cards = [domain[n].cardinality for n in free]
        cmax = max(cards)
        groups = _groups(measurements, domain, free, total, cmax)
        init = one_way_estimates(measurements, domain, free)
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        diagnostics: dict[str, float] = {"total": total}
        for k, r in itertools.product(self.classes, range(self.restarts)):
            nll, pi, theta = self._fit_one(k, r, groups, init, free, cards, cmax)
            aic = 2.0 * nll + 2.0 * ((k - 1) + k * sum(c - 1 for c in cards))
            diagnostics[f"aic_k{k}_r{r}"] = aic
            if best is None or aic < best[0]:
                best = (aic, pi, theta)
        assert best is not None
        _, pi, theta = best
        probs = []
        for a in domain.attributes:
            if a.name in constants:
                probs.append(constant_table(a.cardinality, constants[a.name], pi.size))
            else:
                t = theta[free.index(a.name), :, : a.cardinality]
                probs.append(t / t.sum(axis=1, keepdims=True))
        model = MixtureModel(domain=domain, weights=pi / pi.sum(), probs=tuple(probs),
                          total=total, name=self.name, diagnostics=diagnostics)
        return model.with_support(support)

    def _fit_one(self, k: int, restart: int, groups: list[_Group], init: dict[str, np.ndarray],
                 free: list[str], cards: list[int], cmax: int
                 ) -> tuple[float, np.ndarray, np.ndarray]:
        import torch

        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + k * 101 + restart)
        base = torch.full((len(free), 1, cmax), _PAD, dtype=torch.float64)
        for i, (n, c) in enumerate(zip(free, cards, strict=True)):
            p = init.get(n, np.full(c, 1.0 / c))
            base[i, 0, :c] = torch.from_numpy(np.log(p + 1e-3))
        noise = torch.randn((len(free), k, cmax), generator=gen, dtype=torch.float64)
        logits = (base + self.init_scale * noise).requires_grad_(True)
        logit_pi = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([logits, logit_pi], lr=self.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.steps)
        for _ in range(self.steps):
            opt.zero_grad()
            loss = _nll(logit_pi, logits, groups)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            nll = float(_nll(logit_pi, logits, groups))
            pi = torch.softmax(logit_pi, 0).numpy()
            theta = torch.softmax(logits, -1).numpy()
        return nll, pi, theta
