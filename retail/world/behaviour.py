"""Nature's daily decision rules, vectorised over a merchant's customers.

The rules are pure functions of the customer parameters (:class:`~retail.world.people.
Population`), the day and the counter-based uniforms of :mod:`retail.world.rng`;
:func:`step_day` applies them for one day and updates the mutable :class:`State`
(churn, pull-forward stock, last purchases) and, when an offer runs, its :class:`Outcome`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from retail.catalogue import ORGANIC_MARKUP, default_catalogue
from retail.schema import MERCHANT_TYPES, TIERS
from retail.world import rng as crn
from retail.world.people import Population
from retail.world.personas import TYPE_BEHAVIOUR

__all__ = ["Day", "Effect", "Market", "Outcome", "State", "make_market", "step_day",
           "visit_probability"]

NEVER = -(10**6)
SLOT_VISIT, SLOT_BASKET, SLOT_CHOICE, SLOT_WHEN = 1, 2, 3, 4
SLOT_LINE, SLOT_LINE2, SLOT_LINE3 = 16, 64, 112
STORE_PROMO_PRICE = 0.8  # the store's own weekly promotions
STOCK_PER_UNIT = 0.12  # visit suppression per stockpiled unit (pull-forward)
STOCK_DECAY = 0.93


@dataclass(frozen=True, kw_only=True)
class Market:
    """Public facts of one merchant: catalogue arrays, calendar, store promotions."""

    merchant_type: str
    price: np.ndarray  # (C, 3) SEK
    margin: np.ndarray  # (C, 3)
    organic_ok: np.ndarray  # (C,) bool
    weekday: np.ndarray  # (7,)
    season: np.ndarray  # (366,)
    promo: np.ndarray  # (53, C) bool, a weekly store-promotion calendar
    start: dt.date
    hours: tuple[int, int]
    event_cat: int  # category of forced purchases (vehicles), -1 if none

    @property
    def n_cat(self) -> int:
        return int(self.price.shape[0])

    def day_factor(self, day: int) -> float:
        dow = (self.start.weekday() + day) % 7
        doy = (self.start.timetuple().tm_yday - 1 + day) % 365
        return float(self.weekday[dow] * self.season[doy])

    def promo_now(self, day: int) -> np.ndarray:
        return self.promo[(day // 7) % self.promo.shape[0]]


def make_market(merchant_type: str, rng: np.random.Generator, start: dt.date) -> Market:
    tb = TYPE_BEHAVIOUR[merchant_type]
    cats = MERCHANT_TYPES[merchant_type].categories
    cat = default_catalogue(merchant_type)
    price = np.array([[cat.price(c, t) for t in TIERS] for c in cats])
    margin = np.array([[cat.margin(c, t) for t in TIERS] for c in cats])
    return Market(merchant_type=merchant_type, price=price, margin=margin,
                  organic_ok=np.array([c in tb.organic_ok for c in cats]),
                  weekday=tb.weekday_weights(), season=tb.season_curve(),
                  promo=rng.random((53, len(cats))) < 0.2, start=start, hours=tb.hours,
                  event_cat=cats.index("vehicles") if "vehicles" in cats else -1)


@dataclass
class State:
    """What carries over from day to day (and from the observed period to a counterfactual)."""

    active: np.ndarray  # not churned
    stock: np.ndarray  # pull-forward stock suppressing visits
    last_visit: np.ndarray  # int32 day, NEVER if none
    last_buy: np.ndarray  # (n, C) int32 day of the last purchase per category

    @classmethod
    def fresh(cls, n: int, n_cat: int) -> State:
        return cls(active=np.ones(n, bool), stock=np.zeros(n), last_visit=np.full(n, NEVER,
                   np.int32), last_buy=np.full((n, n_cat), NEVER, np.int32))

    def take(self, idx: np.ndarray) -> State:
        return State(active=self.active[idx].copy(), stock=self.stock[idx].copy(),
                     last_visit=self.last_visit[idx].copy(), last_buy=self.last_buy[idx].copy())


@dataclass(frozen=True, kw_only=True)
class Effect:
    """An offer compiled against one population (see :mod:`retail.world.response`)."""

    kind: str
    start: int
    end: int  # exclusive
    exposed: np.ndarray  # (n,) the customers who receive the offer
    engaged: np.ndarray  # (n,) exposed customers who take it up (join, activate, respond)
    qual_cat: np.ndarray  # (C,) bool
    qual_tier: np.ndarray  # (3,) bool
    organic_only: bool
    pct: float  # fraction off
    amount: float  # SEK off per unit
    trigger: np.ndarray  # (C,) bool, cross-sell triggers (none: everyone eligible)
    visit_lift: np.ndarray  # (n,) extra visit rate of engaged customers
    line_boost: np.ndarray  # (n,) extra pull of qualifying categories
    tier_shift: float
    stockpile: np.ndarray  # (n,) extra units per redeemed unit
    churn_mult: np.ndarray  # (n,) hazard multiplier of engaged customers while it runs
    fee_exposure: float = 0.0
    fee_redemption: float = 0.0
    monthly_fee: float = 0.0
    points_rate: float = 0.0  # value of points earned per SEK spent


@dataclass
class Outcome:
    """Per-customer outcomes accumulated over a window."""

    visits: np.ndarray
    spend: np.ndarray
    margin: np.ndarray
    redemptions: np.ndarray
    discount_cost: np.ndarray
    partner_income: np.ndarray
    fee_income: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> Outcome:
        return cls(visits=np.zeros(n, np.int32), spend=np.zeros(n), margin=np.zeros(n),
                   redemptions=np.zeros(n, np.int32), discount_cost=np.zeros(n),
                   partner_income=np.zeros(n), fee_income=np.zeros(n))


@dataclass(frozen=True, kw_only=True)
class Day:
    """One day's purchases: visitors and their lines (line arrays index visitors by ``vi``)."""

    visitors: np.ndarray
    vi: np.ndarray
    cat: np.ndarray
    tier: np.ndarray
    organic: np.ndarray
    qty: np.ndarray
    unit: np.ndarray
    amount: np.ndarray
    promo: np.ndarray


def rhythm(pop: Population, day: int, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Two-week rhythm: bigger baskets in the weeks the bonus children are home."""
    return pop.fortnight[day % 14][idx]


def visit_probability(day: int, pop: Population, state: State, market: Market,
                      lift: np.ndarray | None) -> np.ndarray:
    p = pop.rate * market.day_factor(day) * rhythm(pop, day) / (1.0 + state.stock)
    if lift is not None:
        p = p * (1.0 + lift)
    return np.where(state.active & (pop.signup_day <= day), np.minimum(p, 0.95), 0.0)


def _tier_weights(s: np.ndarray, premium: np.ndarray) -> np.ndarray:
    w = np.stack([s * s, 2 * s * (1 - s) + 0.15, (1 - s) ** 2 * premium], axis=1)
    return w / w.sum(axis=1, keepdims=True)


def _choices(pop: Population, v: np.ndarray, kv: np.ndarray, day: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Price sensitivity and organic preference at this visit (erratic people redraw them)."""
    s, o = pop.price_sens[v], pop.organic[v]
    err = pop.erratic[v]
    if err.any():
        u_s, u_o = crn.pair(kv[err], day, SLOT_CHOICE)
        s = s.copy()
        o = o.copy()
        s[err] = u_s
        o[err] = np.where(u_o < o[err], 0.9, 0.02)
    return s, o


def _basket(pop: Population, v: np.ndarray, kv: np.ndarray, day: int, market: Market,
            boost: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which categories each visitor buys: (vi, cat, tier uniforms)."""
    u_b, u_f = crn.pair(kv, day, SLOT_BASKET)
    sig = pop.basket_sigma[v]
    size = pop.lines[v] * rhythm(pop, day, v) * np.exp(sig * crn.normal(u_b) - 0.5 * sig * sig)
    w = pop.affinity[v] * (1.0 + 0.6 * pop.promo[v, None] * market.promo_now(day)[None, :])
    if boost is not None:
        w = w * (1.0 + boost)
    u_line, u_tier = crn.pair(kv[:, None], day, SLOT_LINE + np.arange(market.n_cat)[None, :])
    inc = u_line < -np.expm1(-size[:, None] * w)
    empty = np.flatnonzero(~inc.any(axis=1))
    if empty.size:
        cum = np.cumsum(w[empty], axis=1)
        pick = (cum < (u_f[empty] * cum[:, -1])[:, None]).sum(axis=1)
        inc[empty, np.minimum(pick, market.n_cat - 1)] = True
    if market.event_cat >= 0:
        inc[pop.event_day[v] == day, market.event_cat] = True
    vi, c = np.nonzero(inc)
    return vi, c, u_tier[vi, c]


def step_day(day: int, pop: Population, state: State, market: Market, keys: np.ndarray,
             effect: Effect | None = None, outcome: Outcome | None = None) -> Day:
    """Simulate one day: visits, baskets, prices, offer redemption, churn."""
    on = effect is not None and effect.start <= day < effect.end
    eff = effect if on else None
    u_visit, u_churn = crn.pair(keys, day, SLOT_VISIT)
    lift = None
    if eff is not None:
        lift = eff.visit_lift * (eff.engaged & _eligible(eff, slice(None), state, day))
    visit = u_visit < visit_probability(day, pop, state, market, lift)
    if market.event_cat >= 0:
        visit |= (pop.event_day == day) & state.active
    v = np.flatnonzero(visit)
    kv = keys[v]
    boost = _offer_boost(eff, v, state, day) if eff is not None else None
    vi, c, u_tier = _basket(pop, v, kv, day, market, boost)
    lines = _price_lines(pop, v, kv, vi, c, u_tier, day, market, eff, state)
    state.stock *= STOCK_DECAY
    if lines.extra.any():
        np.add.at(state.stock, v[vi], STOCK_PER_UNIT * lines.extra)
    if outcome is not None:
        _account(day, pop, state, market, v, lines, eff, effect, outcome)
    state.last_visit[v] = day
    state.last_buy[v[vi], c] = day
    # an offer changes the churn of the customers who took it up, no one else's (not the
    # control arm's, not that of customers outside the campaign's cohort)
    hazard = (pop.hazard * np.where(eff.engaged, eff.churn_mult, 1.0) if eff is not None
              else pop.hazard)
    state.active &= ~(u_churn < hazard)
    return lines.day


def _offer_boost(eff: Effect, v: np.ndarray, state: State, day: int) -> np.ndarray:
    elig = eff.engaged[v] & _eligible(eff, v, state, day)
    return (eff.line_boost[v] * elig)[:, None] * eff.qual_cat[None, :]


def _eligible(eff: Effect, v: np.ndarray | slice, state: State, day: int) -> np.ndarray:
    """Cross-sell: only recent buyers of a trigger category get the offer."""
    if not eff.trigger.any():
        return np.ones(state.active[v].size, bool)
    return np.asarray((state.last_buy[v][:, eff.trigger] >= day - 60).any(axis=1))


@dataclass(frozen=True, kw_only=True)
class _Lines:
    day: Day
    redeemed: np.ndarray
    extra: np.ndarray
    disc: np.ndarray
    cost: np.ndarray  # cost of goods


def _tiers(pop: Population, v: np.ndarray, kv: np.ndarray, vi: np.ndarray, c: np.ndarray,
           u_tier: np.ndarray, day: int, eff: Effect | None, state: State
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tier per line and organic preference per visitor; an offer pulls its takers towards
    its tiers (trade-up) and organic items. Also returns which lines the offer could cover."""
    s, o = _choices(pop, v, kv, day)
    tw = _tier_weights(s[vi], pop.premium[v[vi]])
    redeemable = np.zeros(vi.size, bool)
    if eff is not None:
        redeemable = (eff.engaged[v] & _eligible(eff, v, state, day))[vi] & eff.qual_cat[c]
        shift = 1.0 + eff.tier_shift * (redeemable[:, None] & eff.qual_tier[None, :])
        tw = tw * shift / (tw * shift).sum(axis=1, keepdims=True)
        if eff.organic_only:
            o = np.where(eff.engaged[v], o + (1 - o) * 0.5 * np.minimum(eff.line_boost[v], 1), o)
    cum = np.cumsum(tw, axis=1)
    tier = (u_tier > cum[:, 0]).astype(np.int8) + (u_tier > cum[:, 1])
    return tier, o, redeemable


def _price_lines(pop: Population, v: np.ndarray, kv: np.ndarray, vi: np.ndarray,
                 c: np.ndarray, u_tier: np.ndarray, day: int, market: Market,
                 eff: Effect | None, state: State) -> _Lines:
    tier, o, redeemable = _tiers(pop, v, kv, vi, c, u_tier, day, eff, state)
    k2 = kv[vi]
    u_org, u_qty = crn.pair(k2, day, SLOT_LINE2 + c)
    u_price, u_promo = crn.pair(k2, day, SLOT_LINE3 + c)
    organic = market.organic_ok[c] & (u_org < o[vi])
    scale = pop.qty[v[vi]] * rhythm(pop, day, v[vi]).clip(0.5)
    qty = np.minimum(1 + np.floor(-np.log(u_qty) * scale), 60).astype(np.int32)
    if market.event_cat >= 0:
        qty[c == market.event_cat] = 1
    regular = np.round(market.price[c, tier] * (1 + ORGANIC_MARKUP * organic)
                       * np.exp(0.1 * crn.normal(u_price)), 2)
    promo = market.promo_now(day)[c] & (u_promo < pop.promo[v[vi]])
    unit = np.where(promo, np.round(regular * STORE_PROMO_PRICE, 2), regular)
    redeemed = np.zeros(vi.size, bool)
    extra = np.zeros(vi.size, np.int32)
    disc = np.zeros(vi.size)
    if eff is not None and eff.kind in ("discount", "cross_sell", "membership"):
        # Every covered line is discounted, including those bought anyway (cannibalisation);
        # takers stock up on covered items (pull-forward).
        redeemed = redeemable & eff.qual_tier[tier] & (organic | (not eff.organic_only))
        new_unit = np.where(redeemed, _discounted(unit, eff), unit)
        extra = np.where(redeemed, np.floor(qty * eff.stockpile[v[vi]]), 0).astype(np.int32)
        qty = qty + extra
        disc = qty * (unit - new_unit)
        unit = new_unit
        promo = promo | redeemed
    day_out = Day(visitors=v, vi=vi, cat=c.astype(np.uint8), tier=tier, organic=organic,
                  qty=qty, unit=unit, amount=np.round(qty * unit, 2), promo=promo)
    return _Lines(day=day_out, redeemed=redeemed, extra=extra, disc=disc,
                  cost=qty * regular * (1 - market.margin[c, tier]))


def _discounted(unit: np.ndarray, eff: Effect) -> np.ndarray:
    if eff.pct > 0:
        return np.maximum(np.round(unit * (1 - eff.pct), 2), 0.01)
    return np.maximum(np.round(unit - eff.amount, 2), 0.01)


def _account(day: int, pop: Population, state: State, market: Market, v: np.ndarray,
             lines: _Lines, eff: Effect | None, effect: Effect | None, out: Outcome) -> None:
    """Add the day's purchases (and the offer's money flows) to the per-customer outcome."""
    d = lines.day
    nv = v.size
    # (bincount of nothing is int64 even with weights: cast)
    spend = np.bincount(d.vi, d.amount, minlength=nv).astype(np.float64)
    margin = spend - np.bincount(d.vi, lines.cost, minlength=nv)
    out.visits[v] += 1
    out.spend[v] += spend
    out.discount_cost[v] += np.bincount(d.vi, lines.disc, minlength=nv)
    if eff is not None and eff.kind == "points":
        earned = spend * eff.points_rate * eff.engaged[v]
        out.discount_cost[v] += earned
        margin -= earned
        out.redemptions[v] += (earned > 0)
    elif eff is not None and eff.kind == "partner":
        first = eff.engaged[v] & (out.redemptions[v] == 0)
        out.redemptions[v] += first
        out.partner_income[v] += first * eff.fee_redemption
    else:
        out.redemptions[v] += np.bincount(d.vi, lines.redeemed, minlength=nv) > 0
    out.margin[v] += margin
    if effect is not None and day == effect.start:
        live = effect.exposed & state.active
        out.partner_income[live] += effect.fee_exposure
    if eff is not None and eff.monthly_fee > 0 and (day - eff.start) % 30 == 0:
        members = eff.engaged & state.active
        out.fee_income[members] += eff.monthly_fee
