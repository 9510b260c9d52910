"""Synthesiser protocol and the fitted latent-class model shared by every synthesiser.

A fitted model is a finite mixture: K classes with weights ``pi`` and, per class, an
independent categorical distribution per attribute. The independent-marginals baseline is
the special case K = 1. Sampling is exact, also conditioned on a cohort filter: the class
posterior given the filter is ``pi_k * prod_a P_k(a in allowed_a)``, and each filtered
attribute is drawn from its class distribution restricted to the allowed levels.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from twins.schema import CohortFilter, Domain
from twins.workload import Measurement

__all__ = [
    "FittedModel",
    "MixtureModel",
    "Synthesiser",
    "estimate_total",
    "one_way_estimates",
    "project_simplex",
]


@runtime_checkable
class FittedModel(Protocol):
    """What the hub holds after fitting: it samples twins and estimates cohort sizes."""

    @property
    def domain(self) -> Domain: ...

    @property
    def total(self) -> float:
        """DP-estimated number of customers behind the fit."""
        ...

    def sample(self, n: int, seed: int, where: CohortFilter | None = None) -> pl.DataFrame: ...

    def share(self, where: CohortFilter | None = None) -> float: ...


class Synthesiser(Protocol):
    """Fits a model to noisy marginals (with their noise variances) of one owner."""

    @property
    def name(self) -> str: ...

    def fit(self, measurements: Sequence[Measurement], domain: Domain, *,
            constants: Mapping[str, int] | None = None,
            support: Mapping[str, Collection[int]] | None = None) -> FittedModel:
        """``support``: public allowed levels per attribute (``schema.structural_support``);
        the fitted model gives every other level probability zero."""
        ...


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of a vector onto the probability simplex (Duchi et al. 2008)."""
    v = np.asarray(v, dtype=float)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    ind = np.arange(1, v.size + 1)
    rho = np.nonzero(u - css / ind > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


def estimate_total(measurements: Sequence[Measurement]) -> float:
    """DP estimate of the number of customers: inverse-variance mean of marginal sums."""
    sums = np.array([float(np.sum(m.values)) for m in measurements])
    var = np.array([m.variance * m.values.size for m in measurements])
    if np.any(var == 0):
        return float(sums[var == 0].mean())
    w = 1.0 / var
    return max(float((w * sums).sum() / w.sum()), 1.0)


def one_way_estimates(measurements: Sequence[Measurement], domain: Domain,
                      names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per attribute, combine every measurement containing it (marginalised) by inverse
    variance, then project to the simplex. Attributes never measured are absent."""
    acc: dict[str, list[tuple[np.ndarray, float]]] = {}
    for m in measurements:
        shape = [domain[n].cardinality for n in m.clique]
        arr = np.asarray(m.values, dtype=float).reshape(shape)
        for axis, name in enumerate(m.clique):
            other = tuple(i for i in range(len(shape)) if i != axis)
            cells = int(np.prod([shape[i] for i in other])) if other else 1
            acc.setdefault(name, []).append((arr.sum(axis=other), m.variance * cells))
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in acc:
            continue
        vals = acc[name]
        if any(v == 0 for _, v in vals):
            est = np.mean([x for x, v in vals if v == 0], axis=0)
        else:
            w = np.array([1.0 / v for _, v in vals])
            est = sum(wi * x for wi, (x, _) in zip(w, vals, strict=True)) / w.sum()
        total = max(float(np.sum(est)), 1.0)
        out[name] = project_simplex(est / total)
    return out


@dataclass(frozen=True, kw_only=True)
class MixtureModel:
    """A fitted latent-class model: class weights and per-class categoricals per attribute."""

    domain: Domain
    weights: np.ndarray
    probs: tuple[np.ndarray, ...]
    total: float
    name: str = "mixture"
    diagnostics: dict[str, float] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        k = self.weights.shape[0]
        if not np.isclose(self.weights.sum(), 1.0) or np.any(self.weights < 0):
            raise ValueError("MixtureModel.weights: must be a probability vector")
        if len(self.probs) != len(self.domain):
            raise ValueError(f"MixtureModel.probs: {len(self.probs)} tables for "
                             f"{len(self.domain)} attributes")
        for a, p in zip(self.domain.attributes, self.probs, strict=True):
            if p.shape != (k, a.cardinality) or not np.allclose(p.sum(axis=1), 1.0):
                raise ValueError(f"MixtureModel.probs[{a.name!r}]: need shape "
                                 f"{(k, a.cardinality)} with rows summing to 1")
        if not (self.total >= 0):
            raise ValueError(f"MixtureModel.total: must be >= 0, got {self.total}")

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[0])

    def _restricted(self, where: CohortFilter | None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unnormalised class posterior under the filter, and the restricted tables."""
        post = self.weights.copy()
        probs = list(self.probs)
        for name, codes in (where.allowed.items() if where else ()):
            i = self.domain.index(name)
            mask = np.zeros(self.domain[name].cardinality)
            mask[sorted(codes)] = 1.0
            restricted = probs[i] * mask
            mass = restricted.sum(axis=1)
            post = post * mass
            probs[i] = restricted / np.where(mass > 0, mass, 1.0)[:, None]
        return post, probs

    def share(self, where: CohortFilter | None = None) -> float:
        """Model probability that a customer satisfies the filter."""
        return float(self._restricted(where)[0].sum())

    def size(self, where: CohortFilter | None = None) -> float:
        """Estimated cohort size: model share times the DP-estimated total."""
        return self.share(where) * self.total

    def sample(self, n: int, seed: int, where: CohortFilter | None = None) -> pl.DataFrame:
        """``n`` twins as attribute codes (UInt8), exactly conditioned on ``where``."""
        if n < 0:
            raise ValueError(f"n: must be >= 0, got {n}")
        post, probs = self._restricted(where)
        if post.sum() <= 0:
            raise ValueError(f"cohort filter {dict(where.allowed) if where else {}} has zero "
                             "probability under the model")
        rng = np.random.default_rng(seed)
        z = np.searchsorted(np.cumsum(post / post.sum()), rng.random(n), side="right")
        z = np.minimum(z, self.n_classes - 1)
        order = np.argsort(z, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(z, minlength=self.n_classes))])
        cols: dict[str, np.ndarray] = {}
        for a, p in zip(self.domain.attributes, probs, strict=True):
            cols[a.name] = _draw(p, order, bounds, rng.random(n))
        return pl.DataFrame(cols, schema={k: pl.UInt8 for k in cols})

    def with_support(self, support: Mapping[str, Collection[int]] | None) -> MixtureModel:
        """This model with public structural zeros: levels outside ``support[attribute]`` get
        probability zero and every class row is renormalised over the allowed levels (a row
        with no allowed mass becomes uniform over them). Public post-processing: no privacy
        cost. Unknown attributes or empty/invalid level sets raise ``ValueError``."""
        if not support:
            return self
        probs = list(self.probs)
        for name, codes in support.items():
            if name not in self.domain:
                raise ValueError(f"support: unknown attribute {name!r}")
            card = self.domain[name].cardinality
            allowed = sorted(set(codes))
            if not allowed or allowed[0] < 0 or allowed[-1] >= card:
                raise ValueError(f"support[{name!r}]: need level codes in 0..{card - 1}, "
                                 f"got {allowed}")
            mask = np.zeros(card)
            mask[allowed] = 1.0
            p = probs[self.domain.index(name)] * mask
            mass = p.sum(axis=1, keepdims=True)
            probs[self.domain.index(name)] = np.where(mass > 0, p / np.where(mass > 0, mass, 1.0),
                                                      mask / mask.sum())
        return MixtureModel(domain=self.domain, weights=self.weights, probs=tuple(probs),
                            total=self.total, name=self.name, diagnostics=self.diagnostics)

    def state(self) -> dict[str, Any]:
        """JSON-friendly parameters (public: they derive only from released marginals)."""
        return {"name": self.name, "total": self.total, "attributes": list(self.domain.names),
                "weights": self.weights.tolist(), "probs": [p.tolist() for p in self.probs]}


def _draw(p: np.ndarray, order: np.ndarray, bounds: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw of one attribute, class by class over the class-sorted rows."""
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = np.inf  # guard against rounding: the last level takes the remainder
    out = np.empty(u.size, dtype=np.uint8)
    for k in range(p.shape[0]):
        rows = order[bounds[k] : bounds[k + 1]]
        if rows.size:
            out[rows] = np.searchsorted(cdf[k], u[rows], side="right")
    return out
