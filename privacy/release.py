"""``Release``: the only data object that leaves an owner, and how one is made.

A release holds noisy integer counts over a *public* attribute domain plus public metadata;
never a customer id or a row. :func:`measure_and_release` is the one way to make one:

1. validate the queries (pre-noise int64 vectors over the domain, declared sensitivities);
2. calibrate each query's exact OpenDP measurement from its share of the budget;
3. **charge the ledger** (one entry for the whole release) — refused ⇒ nothing happens;
4. draw the noise (OpenDP's exact samplers) and build the ``Release``;
5. append the ``released`` record carrying the release's content hash.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from privacy._chain import canonical_json, sha256_hex
from privacy.accounting import DpEvent, zcdp_rho_for_epsilon
from privacy.budget import PrivacyBudget
from privacy.mechanisms import IntegerMechanism, Mechanism, validate_sensitivity
from twinsim import __version__

__all__ = ["RELEASE_SCHEMA_VERSION", "CountQuery", "Measurement", "Release",
           "measure_and_release"]

RELEASE_SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True, eq=False)
class CountQuery:
    """A pre-noise int64 vector over ``attributes`` (C order of their levels) and the most
    one customer can change it: ``sensitivity_l2`` (Gaussian) / ``sensitivity_l1`` (Laplace).

    For a histogram/marginal of one-row-per-customer features both are 1 (see
    :mod:`privacy.units`); for a clamped sum in cents both are the clamp bound.
    """

    name: str
    attributes: tuple[str, ...]
    counts: np.ndarray
    sensitivity_l2: int = 1
    sensitivity_l1: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: must be a non-empty string (got {self.name!r})")
        if not isinstance(self.attributes, tuple):
            raise ValueError(f"{self.name}.attributes: must be a tuple (got {self.attributes!r})")
        c = self.counts
        if not isinstance(c, np.ndarray) or c.ndim != 1 or c.dtype != np.int64:
            raise ValueError(f"{self.name}.counts: must be a 1-D int64 numpy array")
        validate_sensitivity(self.sensitivity_l2, f"{self.name}.sensitivity_l2")
        validate_sensitivity(self.sensitivity_l1, f"{self.name}.sensitivity_l1")

    def sensitivity(self, mechanism: Mechanism) -> int:
        return self.sensitivity_l2 if mechanism == "gaussian" else self.sensitivity_l1


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One released noisy vector and how it was made."""

    name: str
    attributes: tuple[str, ...]
    counts: tuple[int, ...]
    mechanism: str
    scale: float
    rho: float
    epsilon: float
    sensitivity: int

    def array(self) -> np.ndarray:
        return np.asarray(self.counts, dtype=np.int64)


def _expected_cells(domain: Mapping[str, tuple[str, ...]], attributes: tuple[str, ...],
                    where: str) -> int:
    unknown = [a for a in attributes if a not in domain]
    if unknown:
        raise ValueError(f"{where}: attributes {unknown} are not in the public domain "
                         f"{sorted(domain)}")
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"{where}: repeated attribute in {attributes}")
    return math.prod(len(domain[a]) for a in attributes)


@dataclass(frozen=True, kw_only=True)
class Release:
    """Noisy aggregates + public metadata. ``content_hash`` covers every other field."""

    schema_version: int
    release_id: str
    owner: str  # the owner's keyed pseudonym, never the merchant id or name
    merchant_type: str
    regions: tuple[str, ...]
    period: str
    domain: Mapping[str, tuple[str, ...]]
    measurements: tuple[Measurement, ...]
    privacy_loss: Mapping[str, float]
    ledger_entry_id: int
    ledger_entry_hash: str
    software_version: str
    created_at: str
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        if self.schema_version != RELEASE_SCHEMA_VERSION:
            raise ValueError(f"schema_version: this code reads version {RELEASE_SCHEMA_VERSION} "
                             f"(got {self.schema_version!r})")
        for name, levels in self.domain.items():
            if not isinstance(levels, tuple) or not levels:
                raise ValueError(f"domain[{name!r}]: must be a non-empty tuple of labels")
        for m in self.measurements:
            want = _expected_cells(self.domain, m.attributes, f"measurement {m.name!r}")
            if len(m.counts) != want:
                raise ValueError(f"measurement {m.name!r}: {len(m.counts)} counts, the domain "
                                 f"gives {want} cells")
        if self.content_hash != self.compute_hash():
            raise ValueError(f"content_hash: {self.content_hash!r} does not match the content "
                             f"({self.compute_hash()}); the release was altered or is corrupt")

    def _body(self) -> dict[str, Any]:
        body = asdict(self)
        del body["content_hash"]
        body["domain"] = {k: list(v) for k, v in self.domain.items()}
        body["privacy_loss"] = dict(self.privacy_loss)
        return body

    def compute_hash(self) -> str:
        return sha256_hex(canonical_json(self._body()))

    def measurement(self, name: str) -> Measurement:
        for m in self.measurements:
            if m.name == name:
                return m
        raise KeyError(f"release {self.release_id}: no measurement {name!r}")

    def to_json(self) -> str:
        return canonical_json({**self._body(), "content_hash": self.content_hash})

    @classmethod
    def from_json(cls, text: str) -> Release:
        """Parse and check schema version and content hash (``ValueError`` if they fail)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema_version") != RELEASE_SCHEMA_VERSION:
            raise ValueError(f"schema_version: expected {RELEASE_SCHEMA_VERSION}")
        data["regions"] = tuple(data["regions"])
        data["domain"] = {k: tuple(v) for k, v in data["domain"].items()}
        data["measurements"] = tuple(
            Measurement(**{**m, "attributes": tuple(m["attributes"]),
                           "counts": tuple(int(x) for x in m["counts"])})
            for m in data["measurements"])
        return cls(**data)

    @classmethod
    def build(cls, **fields_: Any) -> Release:
        """Construct with the content hash computed (every other field given)."""
        draft = object.__new__(cls)
        for k, v in {**fields_, "content_hash": ""}.items():
            object.__setattr__(draft, k, v)
        return cls(**{**fields_, "content_hash": draft.compute_hash()})


def _split(total: float, queries: Sequence[CountQuery],
           weights: Sequence[float] | None) -> list[float]:
    w = [1.0] * len(queries) if weights is None else [float(x) for x in weights]
    if len(w) != len(queries) or any(not math.isfinite(x) or x <= 0 for x in w):
        raise ValueError(f"weights: need {len(queries)} finite positive weights (got {weights})")
    return [total * x / math.fsum(w) for x in w]


def _plan(mechanism: Mechanism, total: float, queries: Sequence[CountQuery],
          domain: Mapping[str, tuple[str, ...]], weights: Sequence[float] | None,
          ) -> list[IntegerMechanism]:
    if not queries:
        raise ValueError("queries: need at least one CountQuery")
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise ValueError(f"queries: names must be unique (got {names})")
    for q in queries:
        want = _expected_cells(domain, q.attributes, f"query {q.name!r}")
        if q.counts.size != want:
            raise ValueError(f"query {q.name!r}: {q.counts.size} counts, domain gives {want}")
    return [IntegerMechanism.for_loss(mechanism, share, sensitivity=q.sensitivity(mechanism),
                                      size=q.counts.size)
            for q, share in zip(queries, _split(total, queries, weights), strict=True)]


def measure_and_release(budget: PrivacyBudget, *, requester: str, purpose: str,
                        domain: Mapping[str, Sequence[str]], queries: Sequence[CountQuery],
                        rho: float | None = None, epsilon: float | None = None,
                        mechanism: Mechanism = "gaussian", weights: Sequence[float] | None = None,
                        regions: Sequence[str] | None = None) -> Release:
    """Charge, noise and package ``queries`` as one ``Release`` (see the module doc).

    Gaussian (default): give ``rho`` (zCDP), or ``epsilon`` to spend that much at the owner's
    δ. Laplace (``mechanism="laplace"``): give ``epsilon`` (pure DP). The total is split over
    the queries by ``weights`` (even by default); each query is measured separately and the
    ledger charges the sum of OpenDP's own privacy maps. ``regions`` defaults to the owner's
    ``merchant.json`` regions (public metadata).
    """
    dom = {str(k): tuple(str(x) for x in v) for k, v in domain.items()}
    total = _total_loss(budget, mechanism, rho, epsilon)
    mechs = _plan(mechanism, total, queries, dom, weights)
    losses = [m.loss for m in mechs]
    event = (DpEvent(kind="gaussian", rho=math.fsum(losses)) if mechanism == "gaussian"
             else DpEvent(kind="laplace", epsilon=math.fsum(losses)))
    params = {"queries": [{"name": q.name, "attributes": list(q.attributes), "cells": m.size,
                           "scale": m.scale, "sensitivity": m.sensitivity, "loss": loss}
                          for q, m, loss in zip(queries, mechs, losses, strict=True)]}
    sens = ", ".join(f"{q.name}={m.sensitivity}" for q, m in zip(queries, mechs, strict=True))
    charge = budget.charge(event, requester=requester, purpose=purpose, mechanism=mechanism,
                           parameters=params,
                           sensitivity=f"{'L2' if mechanism == 'gaussian' else 'L1'}: {sens}")
    # Only now, after the charge is durable, is the data touched by a sampler.
    measured = tuple(
        Measurement(name=q.name, attributes=q.attributes, counts=tuple(m(q.counts).tolist()),
                    mechanism=mechanism, scale=m.scale,
                    rho=loss if mechanism == "gaussian" else 0.0,
                    epsilon=loss if mechanism == "laplace" else 0.0, sensitivity=m.sensitivity)
        for q, m, loss in zip(queries, mechs, losses, strict=True))
    release = Release.build(
        schema_version=RELEASE_SCHEMA_VERSION, release_id=f"rel-{charge.entry_hash[:20]}",
        owner=budget.ledger.pseudonym, merchant_type=budget.ledger.merchant_type,
        regions=tuple(budget.regions if regions is None else regions), period=charge.period,
        domain=dom, measurements=measured,
        privacy_loss={"rho": event.rho, "epsilon": charge.epsilon, "delta": charge.delta,
                      "pure_epsilon": event.epsilon},
        ledger_entry_id=charge.entry_id, ledger_entry_hash=charge.entry_hash,
        software_version=__version__,
        created_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    budget.record_release(charge, release.content_hash, requester=requester)
    return release


def _total_loss(budget: PrivacyBudget, mechanism: Mechanism, rho: float | None,
                epsilon: float | None) -> float:
    if (rho is None) == (epsilon is None):
        raise ValueError("give exactly one of rho (Gaussian, zCDP) or epsilon")
    if mechanism == "laplace":
        if epsilon is None:
            raise ValueError("mechanism='laplace' is pure DP: give epsilon, not rho")
        return float(epsilon)
    if mechanism != "gaussian":
        raise ValueError(f"mechanism: must be 'gaussian' or 'laplace' (got {mechanism!r})")
    if rho is not None:
        return float(rho)
    assert epsilon is not None
    return zcdp_rho_for_epsilon(epsilon, budget.delta)
