"""Cohorts across owners: fit per owner, mix twins in proportion to DP-estimated sizes.

Each owner's release is fitted separately (the correct and simplest route: owners' customers
are disjoint populations). A cohort's size at one owner is the model's share of the filter
times that owner's DP-estimated total; twins are allocated to owners by those sizes and
drawn from each owner's model conditioned on the filter.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from twins.schema import CohortFilter
from twins.synth.base import FittedModel
from twinsim.errors import CohortTooSmall

__all__ = ["MIN_COHORT", "cohort_sizes", "mix_twins"]

MIN_COHORT = 100  # DESIGN: cohorts below this DP-estimated size are not simulated


def cohort_sizes(models: Mapping[str, FittedModel],
                 where: CohortFilter | None = None) -> dict[str, float]:
    """DP-estimated cohort size per owner (model share x DP total)."""
    return {owner: m.share(where) * m.total for owner, m in models.items()}


def mix_twins(models: Mapping[str, FittedModel], n: int, seed: int,
              where: CohortFilter | None = None, *, min_size: float = MIN_COHORT
              ) -> pl.DataFrame:
    """``n`` twins of the cohort, drawn from each owner's model, with an ``owner`` column.

    Raises CohortTooSmall when the total estimated cohort size is below ``min_size``.
    """
    if not models:
        raise ValueError("mix_twins: no fitted models given")
    sizes = cohort_sizes(models, where)
    total = sum(sizes.values())
    if total < min_size:
        raise CohortTooSmall(
            f"cohort {dict(where.allowed) if where else 'all'}: estimated size {total:.0f} "
            f"is below the minimum {min_size:.0f}; widen the filter or add owners")
    owners = sorted(models)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.array([sizes[o] for o in owners]) / total)
    seeds = rng.integers(0, 2**63 - 1, size=len(owners))
    parts = [models[o].sample(int(c), int(s), where).with_columns(owner=pl.lit(o))
             for o, c, s in zip(owners, counts, seeds, strict=True) if c > 0]
    return pl.concat(parts) if parts else models[owners[0]].sample(0, 0).with_columns(
        owner=pl.lit("", pl.String))
