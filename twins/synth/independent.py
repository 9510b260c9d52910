"""Baseline: a product of noisy 1-way marginals, projected to the simplex (K = 1)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twins.schema import Domain
from twins.synth.base import MixtureModel, estimate_total, one_way_estimates
from twins.workload import Measurement

__all__ = ["IndependentSynthesiser", "constant_table", "require_measured", "unmeasured"]


def constant_table(card: int, code: int, k: int = 1) -> np.ndarray:
    table = np.zeros((k, card))
    table[:, code] = 1.0
    return table


def unmeasured(measurements: Sequence[Measurement], domain: Domain,
               constants: Mapping[str, int]) -> list[str]:
    seen = {n for m in measurements for n in m.clique}
    return [n for n in domain.names if n not in seen and n not in constants]


def require_measured(measurements: Sequence[Measurement], domain: Domain,
                     constants: Mapping[str, int] | None, who: str) -> dict[str, int]:
    """Every attribute must be measured or a public constant; returns the constants."""
    constants = dict(constants or {})
    missing = unmeasured(measurements, domain, constants)
    if missing:
        raise ValueError(f"{who}: attributes {missing} are neither measured nor "
                         "public constants")
    return constants


@dataclass(frozen=True, kw_only=True)
class IndependentSynthesiser:
    """Every attribute independent: each 1-way marginal estimated from all measurements
    containing it (inverse-variance combined), so the baseline is as strong as it can be."""

    name: str = "independent"

    def fit(self, measurements: Sequence[Measurement], domain: Domain, *,
            constants: Mapping[str, int] | None = None,
            support: Mapping[str, Collection[int]] | None = None) -> MixtureModel:
        constants = require_measured(measurements, domain, constants, "independent")
        est = one_way_estimates(measurements, domain, domain.names)
        probs = tuple(
            constant_table(a.cardinality, constants[a.name]) if a.name in constants
            else est[a.name][None, :]
            for a in domain.attributes)
        model = MixtureModel(domain=domain, weights=np.ones(1), probs=probs,
                          total=estimate_total(measurements), name=self.name)
        return model.with_support(support)
