"""Fidelity of twins against an owner's real feature table (owner side: it reads real rows).

:func:`fidelity_report` scores twins by the TVD over all 1-way and 2-way marginals
(:func:`twins.fidelity.marginal_tvd`) and sets them beside a **baseline: independent
marginals fitted to the exact 1-way marginals of the real table**. Its 2-way TVD is computed
exactly (real joint vs the product of the real 1-way marginals, no sampling), so it is the
best any independent-marginals model can do; a DP-fitted independent model is worse.

:data:`PERSONAS` are public attribute rules for recognisable kinds of customer (the product
brief's stories); :func:`persona_shares` gives each rule's share of a code table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from twins.fidelity import marginal_tvd
from twins.schema import SCHEMA, CohortFilter, Domain

__all__ = ["PERSONAS", "fidelity_report", "independent_baseline_tvd", "persona_shares"]

# Each persona: clauses of a CohortFilter (AND). Bins are the public schema's.
PERSONAS: dict[str, str] = {
    "eco_premium": "organic_share>=high, tier=premium",
    "budget_daily": "frequency>=8_15, tier=budget",
    "erratic": "volatility=high",
    "pet_owner": "pet=yes",
    "new_parent": "baby=yes",
    "two_week_rhythm": "rhythm=two_week",
}


def independent_baseline_tvd(real: pl.DataFrame, domain: Domain = SCHEMA,
                             names: Sequence[str] | None = None) -> dict[str, float]:
    """Exact 2-way TVD of the product of the real table's own 1-way marginals."""
    names = list(names or domain.names)
    x = real.select(names).to_numpy().astype(np.int64)
    cards = [domain[n].cardinality for n in names]
    ones = [np.bincount(x[:, j], minlength=c) / x.shape[0] for j, c in enumerate(cards)]
    out = []
    for i, j in itertools.combinations(range(len(names)), 2):
        joint = np.bincount(x[:, i] * cards[j] + x[:, j], minlength=cards[i] * cards[j])
        prod = np.outer(ones[i], ones[j]).ravel()
        out.append(0.5 * float(np.abs(joint / x.shape[0] - prod).sum()))
    arr = np.asarray(out)
    return {"baseline_tvd_2way_mean": float(arr.mean()) if arr.size else 0.0,
            "baseline_tvd_2way_max": float(arr.max()) if arr.size else 0.0}


def fidelity_report(real: pl.DataFrame, twins: pl.DataFrame, domain: Domain = SCHEMA,
                    where: CohortFilter | None = None) -> dict[str, float | int | str]:
    """TVD of twins vs real (1- and 2-way) beside the independent baseline (module doc).

    ``where`` restricts the real table to a cohort (twins drawn for that cohort).
    """
    if where is not None:
        real = real.filter(pl.Series(where.mask(real)))
    if real.height == 0 or twins.height == 0:
        raise ValueError(f"fidelity: need rows on both sides (real {real.height}, twins "
                         f"{twins.height})")
    scores: dict[str, float | int | str] = dict(marginal_tvd(real, twins, domain))
    scores.update(independent_baseline_tvd(real, domain))
    scores.update(n_real=real.height, n_twins=twins.height,
                  baseline="independent product of the owner's exact 1-way marginals")
    return scores


def persona_shares(table: pl.DataFrame, personas: Mapping[str, str] = PERSONAS,
                   domain: Domain = SCHEMA) -> dict[str, float]:
    """Share of rows satisfying each persona rule."""
    if table.height == 0:
        raise ValueError("persona_shares: empty table")
    return {name: float(CohortFilter.parse(rule, domain).mask(table).mean())
            for name, rule in personas.items()}
