"""Business-as-usual forecast: what the twins do over the next days without any offer.

Intervals are 95% *prediction* intervals over replications (Student-t, ``sd·sqrt(1+1/R)``):
where one future realisation of the total would fall, given these twins and parameters. Like
the experiment CIs they exclude synthesis error and parameter misspecification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from retail.catalogue import Catalogue
from simulation.engine_vectorised import DAILY_FIELDS
from simulation.experiment import Estimate, replication_seed, t_interval
from simulation.model import MarketModel
from simulation.params import TwinParams

__all__ = ["Forecast", "forecast"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Forecast:
    n_twins: int
    days: int
    replications: int
    seed: int
    transactions: Estimate  # purchase days over the horizon
    revenue: Estimate  # SEK over the horizon
    margin: Estimate  # SEK over the horizon
    active_at_horizon: Estimate  # twins still customers on the last day
    daily: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"n_twins": self.n_twins, "days": self.days, "replications": self.replications,
                "seed": self.seed,
                **{k: getattr(self, k).to_dict() for k in
                   ("transactions", "revenue", "margin", "active_at_horizon")},
                "daily": self.daily.to_dicts()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def forecast(params: TwinParams, *, catalogue: Catalogue | None = None, days: int = 90,
             replications: int = 20, seed: int = 0, engine: str = "vectorised",
             confidence: float = 0.95) -> Forecast:
    """Simulate ``replications`` futures of the twins without an offer."""
    if replications < 2:
        raise ValueError(f"replications: need >= 2 for an interval, got {replications}")
    tx, rev, mar, act, daily = [], [], [], [], []
    for r in range(replications):
        run = MarketModel(params, catalogue=catalogue, engine=engine,
                          seed=replication_seed(seed, r), agent_limit=0).run(days)
        tx.append(run.daily["visits"].sum())
        rev.append(run.daily["revenue"].sum())
        mar.append(run.daily["margin"].sum())
        act.append(run.daily["active"][-1])
        daily.append(run.daily)
    mean = {k: np.mean([d[k] for d in daily], axis=0) for k in DAILY_FIELDS}

    def pi(v: list[float]) -> Estimate:
        return t_interval(np.array(v), confidence, predictive=True)

    return Forecast(n_twins=params.n, days=days, replications=replications, seed=seed,
                    transactions=pi(tx), revenue=pi(rev), margin=pi(mar),
                    active_at_horizon=pi(act),
                    daily=pl.DataFrame({"day": np.arange(days), **mean}))
