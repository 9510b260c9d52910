"""The Mesa model of a merchant's customers: one step is one day.

``MarketModel(params, engine="reference")`` lets every :class:`twins.agent.CustomerTwin`
decide for itself each day (``agents.shuffle_do("step")``), drawing from ``model.rng``;
``engine="vectorised"`` applies the same rules to arrays of all twins at once, also drawing
from ``model.rng``. Agents exist in both (the vectorised engine never touches them during a
day; their state is synced at the end of :meth:`MarketModel.run`), except that the
vectorised engine skips creating them above ``agent_limit`` twins to save memory.
A ``mesa.DataCollector`` records the daily aggregates for both engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np
import polars as pl

from retail.catalogue import Catalogue, default_catalogue
from simulation.behaviour import NO_OUTCOME, AgentInputs, AgentState, DayOutcome, basket_log_params
from simulation.effects import OfferEffect, margin_rate
from simulation.engine_vectorised import DAILY_FIELDS, RunTotals, VectorisedEngine
from simulation.params import TwinParams

__all__ = ["ENGINES", "MarketModel", "RunResult"]

ENGINES: tuple[str, ...] = ("vectorised", "reference")


@dataclass(frozen=True, kw_only=True, eq=False)
class RunResult:
    """Per-twin totals, final state and daily aggregates of one run."""

    totals: RunTotals
    active: np.ndarray
    exposed: np.ndarray
    redeemed: np.ndarray
    daily: dict[str, np.ndarray]
    mode: str = "none"

    def daily_frame(self) -> pl.DataFrame:
        days = len(next(iter(self.daily.values())))
        return pl.DataFrame({"day": np.arange(days), **self.daily})


class MarketModel(mesa.Model):
    """Twins of one merchant, simulated day by day under an optional offer effect."""

    def __init__(self, params: TwinParams, *, catalogue: Catalogue | None = None,
                 effect: OfferEffect | None = None, engine: str = "vectorised",
                 seed: int | None = None, agent_limit: int = 100_000) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine: {engine!r} not in {ENGINES}")
        super().__init__(seed=seed)
        self.params = params
        self.effect = effect if effect is not None else OfferEffect.none(params.n)
        if self.effect.n != params.n:
            raise ValueError(f"effect: {self.effect.n} twins, params: {params.n}")
        self.terms = self.effect.terms
        self.engine = engine
        self.margin_rate = margin_rate(params, catalogue or default_catalogue(
            params.merchant_type))
        self.day = 0
        self.today: dict[str, float] = dict.fromkeys(DAILY_FIELDS, 0.0)
        self.datacollector = mesa.DataCollector(
            model_reporters={k: _reporter(k) for k in DAILY_FIELDS})
        self._vec = (VectorisedEngine(params, self.margin_rate, self.effect, self.rng)
                     if engine == "vectorised" else None)
        if engine == "reference" or params.n <= agent_limit:
            # imported here: twins.agent imports simulation.behaviour (no import cycle)
            from twins.agent import CustomerTwin

            CustomerTwin.create_agents(self, params.n, index=np.arange(params.n),
                                       inputs=agent_inputs(params, self.margin_rate,
                                                           self.effect),
                                       state=_initial_states(params))

    def record(self, out: DayOutcome, active: bool) -> None:
        """Called by each agent (reference engine) with its day's outcome."""
        t = self.today
        t["active"] += active
        if out is NO_OUTCOME:
            return
        t["visits"] += out.visit
        t["revenue"] += out.revenue
        t["margin"] += out.margin
        t["cost"] += out.cost
        t["redemptions"] += out.redemptions
        t["income"] += out.income

    def step(self) -> None:
        if self._vec is not None:
            self.today = self._vec.step(self.day)
        else:
            self.today = dict.fromkeys(DAILY_FIELDS, 0.0)
            self.agents.shuffle_do("step")
        self.datacollector.collect(self)
        self.day += 1

    def run(self, days: int) -> RunResult:
        """Simulate ``days`` more days; return totals, final state and daily aggregates."""
        if days <= 0:
            raise ValueError(f"days: must be > 0, got {days}")
        for _ in range(days):
            self.step()
        frame = self.datacollector.get_model_vars_dataframe()
        daily = {k: frame[k].to_numpy(dtype=float) for k in DAILY_FIELDS}
        if self._vec is not None:
            v = self._vec
            self._sync_agents()
            return RunResult(totals=v.totals, active=v.active.copy(), exposed=v.exposed.copy(),
                             redeemed=v.redeemed.copy(), daily=daily, mode=self.terms.mode)
        return self._gather(daily)

    def _gather(self, daily: dict[str, np.ndarray]) -> RunResult:
        n = self.params.n
        tot = RunTotals(n)
        active, exposed, redeemed = (np.zeros(n, dtype=bool) for _ in range(3))
        for a in self.agents:
            i, s, t = a.index, a.state, a.totals
            active[i], exposed[i], redeemed[i] = s.active, s.exposed, s.redeemed
            tot.visits[i], tot.redemptions[i] = t["visit"], t["redemptions"]
            for k in ("revenue", "margin", "cost", "cannibal", "income"):
                getattr(tot, k)[i] = t[k]
        return RunResult(totals=tot, active=active, exposed=exposed, redeemed=redeemed,
                         daily=daily, mode=self.terms.mode)

    def _sync_agents(self) -> None:
        """Give inspectable agents the vectorised engine's final state (once, not per day)."""
        v = self._vec
        if v is None or len(self.agents) == 0:
            return
        for a in self.agents:
            i = a.index
            a.state = AgentState(active=bool(v.active[i]), days_since=int(v.days_since[i]),
                                 stock=float(v.stock[i]) if v.stock is not None else 0.0,
                                 exposed=bool(v.exposed[i]), enrolled=bool(v.enrolled[i]),
                                 redeemed=bool(v.redeemed[i]))


def _reporter(key: str) -> Any:
    return lambda m: m.today[key]


def agent_inputs(params: TwinParams, margin: np.ndarray, effect: OfferEffect
                 ) -> list[AgentInputs]:
    """Per-twin scalar inputs for the reference engine (Python floats)."""
    mu, sigma = basket_log_params(params.basket_mean.astype(float),
                                  params.basket_cv.astype(float))
    e = effect
    cols = (params.visit_rate, [tuple(r) for r in params.weekday.tolist()], params.rhythm_amp,
            params.rhythm_phase, params.churn_hazard, mu, sigma, margin, e.targeted,
            e.eligible_share, e.discount_rate, e.p_event, e.visit_lift, e.basket_lift,
            e.pull_forward, e.churn_mult, e.margin_eligible, e.cross_item, e.cost_mult,
            e.contact_churn_mult, e.use_p)
    lists = [c if isinstance(c, list) else np.asarray(c).tolist() for c in cols]
    return [AgentInputs(*row) for row in zip(*lists, strict=True)]


def _initial_states(params: TwinParams) -> list[AgentState]:
    return [AgentState(active=a, days_since=d) for a, d in
            zip(params.active.tolist(), params.days_since_visit.tolist(), strict=True)]
