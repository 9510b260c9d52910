"""The vectorised engine: the rules of ``simulation.behaviour`` applied to all twins at once.

Same day order and the same draws per twin as the reference engine (see the behaviour module
docstring). Speed comes from three things only: the visit probability of each twin is
precomputed for the 14 phases of the two-week cycle (the rule is periodic in the day), work
after the visit decision touches only the visitors (index arrays), and per-day draws go into
reused float32 buffers.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from simulation.behaviour import (
    basket_log_params,
    basket_value,
    consume_stock,
    day_margin,
    offer_purchase,
    visit_probability,
)
from simulation.effects import OfferEffect
from simulation.params import TwinParams

__all__ = ["DAILY_FIELDS", "RunTotals", "VectorisedEngine"]

F32 = np.float32
_THREAD_MIN = 50_000  # below this a thread hand-off costs more than it saves
_POOL: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:  # numpy fills arrays without the GIL: a second core draws half the numbers
        _POOL.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="twinsim-draw"))
    return _POOL[0]


def _normal(g: np.random.Generator, out: np.ndarray) -> None:
    g.standard_normal(out=out, dtype=F32)
DAILY_FIELDS: tuple[str, ...] = ("visits", "revenue", "margin", "cost", "redemptions",
                                 "income", "active")


@dataclass
class RunTotals:
    """Per-twin totals over a run (arrays of length n) and the final state."""

    n: int
    visits: np.ndarray = field(init=False)
    revenue: np.ndarray = field(init=False)
    margin: np.ndarray = field(init=False)
    cost: np.ndarray = field(init=False)
    cannibal: np.ndarray = field(init=False)
    redemptions: np.ndarray = field(init=False)
    income: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.visits = np.zeros(self.n, dtype=np.int32)
        self.redemptions = np.zeros(self.n, dtype=np.int32)
        for name in ("revenue", "margin", "cost", "cannibal", "income"):
            setattr(self, name, np.zeros(self.n, dtype=F32))


class VectorisedEngine:
    """Holds the state of n twins and advances them one day per :meth:`step`."""

    def __init__(self, params: TwinParams, margin_rate: np.ndarray, effect: OfferEffect,
                 rng: np.random.Generator) -> None:
        n = params.n
        self.n, self.e, self.terms = n, effect, effect.terms
        # one child generator per stream (churn, visit, basket, redeem): a stream's numbers
        # depend only on its generator and the day, so the control arm, which never reads
        # redemption draws, can skip them without shifting any other stream
        self._gens = dict(zip(("churn", "visit", "z", "redeem"), rng.spawn(4), strict=True))
        self.hazard = params.churn_hazard
        self.margin_rate = margin_rate
        mu, sigma = basket_log_params(params.basket_mean, params.basket_cv)
        self.mu, self.sigma = mu.astype(F32), sigma.astype(F32)
        self.p_visit = np.empty((14, n), dtype=F32)
        for d in range(14):  # the visit rule is 14-periodic: evaluate it once per phase
            self.p_visit[d] = visit_probability(params.visit_rate, params.weekday[:, d % 7],
                                                params.rhythm_amp, params.rhythm_phase, d)
        self.p_lift = None
        if self.terms.mode == "per_visit":  # exposed twins in the window: the lifted rule
            lift = np.where(effect.targeted, effect.visit_lift, 0).astype(F32)
            self.p_lift = np.empty((14, n), dtype=F32)
            for d in range(14):
                self.p_lift[d] = visit_probability(params.visit_rate, params.weekday[:, d % 7],
                                                   params.rhythm_amp, params.rhythm_phase, d,
                                                   lift)
        self.active = params.active.copy()
        self.days_since = params.days_since_visit.astype(np.int32)
        self.exposed = np.zeros(n, dtype=bool)
        self.enrolled = np.zeros(n, dtype=bool)
        self.redeemed = np.zeros(n, dtype=bool)
        self.stock = np.zeros(n, dtype=F32) if self.terms.mode == "per_visit" else None
        self.totals = RunTotals(n)
        self._exp_idx = np.zeros(0, dtype=np.int64)
        self._buf = {k: np.empty(n, dtype=F32) for k in ("churn", "visit", "z", "redeem")}
        self._b1, self._b2 = np.empty(n, dtype=bool), np.empty(n, dtype=bool)

    def _draw(self) -> None:
        # Every day, whatever happens: common random numbers across arms, identical whether
        # or not the normals are drawn in a second thread.
        b, g = self._buf, self._gens
        job = _pool().submit(_normal, g["z"], b["z"]) if self.n >= _THREAD_MIN else None
        g["churn"].random(out=b["churn"], dtype=F32)
        g["visit"].random(out=b["visit"], dtype=F32)
        if self.terms.mode != "none":
            g["redeem"].random(out=b["redeem"], dtype=F32)
        if job is None:
            _normal(g["z"], b["z"])
        else:
            job.result()

    def step(self, day: int) -> dict[str, float]:
        """Advance all twins by one day; return the day's aggregates (DAILY_FIELDS)."""
        self._draw()
        t, tot = self.terms, self.totals
        n_joined = 0
        if day == t.start:
            self.exposed = self.e.targeted & self.active
            self._exp_idx = np.flatnonzero(self.exposed)
            tot.income[self._exp_idx] += F32(t.fee_per_exposure)
            if t.mode == "persistent" or t.takers:  # members join, takers take, right then
                e = self._exp_idx
                joined = e[self._buf["redeem"][e] < self.e.p_event[e]]
                self.enrolled[joined] = True
                if t.mode == "persistent":
                    tot.redemptions[joined] += 1
                    n_joined = int(joined.size)
        window = t.start <= day < t.end and t.mode != "none"
        self._churn(window)
        income, n_partner = self._fees(window)
        idx = self._visitors(day, window)
        self.days_since += 1
        self.days_since[idx] = 0
        out = self._purchases(idx, window, day)
        out["income"] += income + (t.fee_per_exposure * self._exp_idx.size
                                   if day == t.start else 0.0)
        out["redemptions"] += n_partner + n_joined
        out["active"] = float(np.count_nonzero(self.active))
        return out

    def _churn(self, window: bool) -> None:
        alive = np.greater_equal(self._buf["churn"], self.hazard, out=self._b1)
        if self.terms.mode == "persistent" and window:
            e = np.flatnonzero(self.enrolled)
            alive[e] = self._buf["churn"][e] >= self.hazard[e] * self.e.churn_mult[e]
        elif self.terms.mode == "per_visit" and window:  # (likely) takers churn less
            e = self._exp_idx
            alive[e] = self._buf["churn"][e] >= self.hazard[e] * self.e.contact_churn_mult[e]
        self.active &= alive

    def _visitors(self, day: int, window: bool) -> np.ndarray:
        u = self._buf["visit"]
        # targeted twins not exposed on the start day had churned, and churn is final, so
        # the lifted table can serve all targeted twins during the window
        lifted = window and self.p_lift is not None
        p = self.p_lift[day % 14] if lifted else self.p_visit[day % 14]  # type: ignore[index]
        visit = np.less(u, p, out=self._b2)
        if self.terms.mode == "persistent" and window:
            b = np.flatnonzero(self.enrolled)
            visit[b] = u[b] < np.minimum(p[b] * (1.0 + self.e.visit_lift[b]), 1.0)
        visit &= self.active
        return np.flatnonzero(visit)

    def _fees(self, window: bool) -> tuple[float, int]:
        """Membership fees of enrolled active twins; partner redemptions (no visit needed)."""
        t, tot = self.terms, self.totals
        if t.mode == "persistent":
            if not window:
                return 0.0, 0
            paying = np.flatnonzero(self.enrolled & self.active)
            tot.income[paying] += F32(t.fee_daily)
            return t.fee_daily * paying.size, 0
        if t.mode != "partner" or not window:
            return 0.0, 0
        e = self._exp_idx
        hit = self.active[e] & ~self.redeemed[e] & (self._buf["redeem"][e] < self.e.p_event[e])
        r = e[hit]
        self.redeemed[r] = True
        tot.redemptions[r] += 1
        tot.income[r] += F32(t.fee_per_redemption)
        return t.fee_per_redemption * r.size, int(r.size)

    def _purchases(self, idx: np.ndarray, window: bool, day: int) -> dict[str, float]:
        e, tot = self.e, self.totals
        basket = basket_value(self.mu[idx], self.sigma[idx], self._buf["z"][idx])
        if self.stock is not None:
            basket, self.stock[idx] = consume_stock(basket, e.eligible_share[idx],
                                                    self.stock[idx])
        revenue, margin = basket, self.margin_rate[idx] * basket
        n_red, cost_sum = 0, 0.0
        pos = self._offer_users(idx, window, day)
        if pos is not None and pos[0].size:
            use, joined = pos
            j = idx[use]
            mult = e.cost_mult[j] / e.use_p[j] if self.terms.takers else e.cost_mult[j]
            pur = offer_purchase(basket[use], e.eligible_share[j], e.discount_rate[j],
                                 e.basket_lift[j], e.pull_forward[j], e.cross_item[j], mult)
            revenue = basket.copy()
            revenue[use] += pur.extra - pur.cost
            margin[use] = day_margin(basket[use], pur.extra, self.margin_rate[j],
                                     e.margin_eligible[j], pur.cost)
            tot.cost[j] += pur.cost
            tot.cannibal[j] += pur.cannibal
            if self.stock is not None:
                self.stock[j] += pur.stock_add
            self.redeemed[j] = True
            cost_sum = float(pur.cost.sum(dtype=np.float64))
            n_red += joined
        tot.visits[idx] += 1
        tot.revenue[idx] += revenue
        tot.margin[idx] += margin
        return {"visits": float(idx.size), "revenue": float(revenue.sum(dtype=np.float64)),
                "margin": float(margin.sum(dtype=np.float64)), "cost": cost_sum,
                "redemptions": float(n_red), "income": 0.0}

    def _offer_users(self, idx: np.ndarray, window: bool, day: int
                     ) -> tuple[np.ndarray, int] | None:
        """Positions (in idx) of visits the offer applies to, and the day's redemptions."""
        e, mode = self.e, self.terms.mode
        if mode == "per_visit" and window and self.terms.takers:
            # a taker's visit holding a covered item; on the start day the draw that made it
            # a taker, rescaled (u / p_event is uniform given u < p_event)
            taker = self.enrolled[idx]
            u = self._buf["redeem"][idx]
            if day == self.terms.start:
                u = u / np.maximum(e.p_event[idx], F32(1e-30))
            use = taker & (u < e.use_p[idx])
            n = int(np.count_nonzero(use))
            self.totals.redemptions[idx[use]] += 1
            return np.flatnonzero(use), n
        if mode == "per_visit" and window:
            use = self.exposed[idx] & (self._buf["redeem"][idx] < e.p_event[idx])
            n = int(np.count_nonzero(use))
            self.totals.redemptions[idx[use]] += 1
            return np.flatnonzero(use), n
        if mode == "persistent" and window:  # members joined on the start day
            return np.flatnonzero(self.enrolled[idx]), 0
        return None
