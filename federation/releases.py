"""Owner side of a release request: DP marginals of the owner's customer features.

Thin wiring of ``twins`` (features, workload) to ``privacy.release.measure_and_release``,
which charges the ledger before any noise is drawn and returns a ``Release``. The request is
public (which marginals, how much ε, why); the answer carries only noisy counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from federation.data import customer_codes
from privacy.budget import PrivacyBudget
from privacy.release import CountQuery, Release, measure_and_release
from retail.load import load_merchant
from twins.schema import SCHEMA, structural_constants
from twins.workload import default_workload, workload_counts

__all__ = ["ReleaseRequest", "answer_release"]


@dataclass(frozen=True, kw_only=True)
class ReleaseRequest:
    """Marginals to release (``None``: the twins' default workload) at total ``epsilon``."""

    requester: str
    purpose: str
    epsilon: float
    cliques: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, int | float) and math.isfinite(self.epsilon)
                and self.epsilon > 0):
            raise ValueError(f"ReleaseRequest.epsilon: must be a finite number > 0 "
                             f"(got {self.epsilon!r})")
        for c in self.cliques or ():
            for name in c:
                SCHEMA.index(name)  # raises naming the unknown attribute
        if not self.purpose.strip():
            raise ValueError("ReleaseRequest.purpose: say why the release is needed")


def answer_release(folder: str | Path, request: ReleaseRequest, *,
                   budget: PrivacyBudget) -> Release:
    """Charge, measure and return the release (``BudgetExceeded`` leaves nothing changed)."""
    merchant = load_merchant(folder)
    mt = merchant.info.merchant_type
    workload = default_workload(constants=structural_constants(mt))
    cliques = request.cliques if request.cliques is not None else workload.cliques
    weights = (workload.weights if request.cliques is None else (1.0,) * len(cliques))
    codes = customer_codes(merchant)
    counts = workload_counts(codes, SCHEMA, type(workload)(
        cliques=tuple(cliques), weights=tuple(weights), constants={}))
    queries = [CountQuery(name="|".join(c), attributes=tuple(c),
                          counts=np.asarray(v, dtype=np.int64))
               for c, v in zip(cliques, counts, strict=True)]
    domain = {n: SCHEMA[n].levels for c in cliques for n in c}
    return measure_and_release(budget, requester=request.requester, purpose=request.purpose,
                               domain=domain, queries=queries, epsilon=request.epsilon,
                               weights=weights, regions=merchant.info.regions)
