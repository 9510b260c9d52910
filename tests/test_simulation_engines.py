"""The reference (per-agent Mesa) and vectorised engines apply one specification.

They draw from independent random streams, so they agree in distribution, not draw by draw:
the reference totals must fall inside the spread of vectorised replications, and per-customer
spend must pass a two-sample KS test (fixed seeds; false-alarm thresholds 4 sd / p = 1e-3).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from retail.offers import Offer
from simulation.effects import OfferEffect, build_effect
from simulation.model import MarketModel, RunResult
from simulation.params import TwinParams
from simulation.response import ParametricResponse
from twins.agent import CustomerTwin

DAYS = 60


@pytest.fixture(scope="module")
def twins() -> TwinParams:
    return TwinParams.synthetic(2000, "grocery", seed=21)


def _run(p: TwinParams, effect: OfferEffect | None, engine: str, seed: int) -> RunResult:
    return MarketModel(p, effect=effect, engine=engine, seed=seed, agent_limit=0).run(DAYS)


@pytest.fixture(scope="module")
def ref_plain(twins: TwinParams) -> RunResult:
    return _run(twins, None, "reference", seed=1)


def _agree(p: TwinParams, effect: OfferEffect | None, keys: tuple[str, ...],
           ref: RunResult | None = None) -> None:
    ref = ref or _run(p, effect, "reference", seed=1)
    vec = [_run(p, effect, "vectorised", seed=100 + r) for r in range(12)]
    for key in keys:
        totals = np.array([v.daily[key].sum() for v in vec])
        mean, sd = totals.mean(), totals.std(ddof=1)
        assert abs(ref.daily[key].sum() - mean) < 4 * sd * np.sqrt(1 + 1 / len(vec)), key
    pooled = np.concatenate([v.totals.revenue for v in vec[:3]])
    assert stats.ks_2samp(ref.totals.revenue, pooled).pvalue > 1e-3
    assert stats.ks_2samp(ref.totals.visits, vec[0].totals.visits).pvalue > 1e-3


def test_engines_agree_without_an_offer(twins: TwinParams, ref_plain: RunResult) -> None:
    _agree(twins, None, ("visits", "revenue", "margin", "active"), ref_plain)


def test_engines_agree_under_a_targeted_discount(twins: TwinParams) -> None:
    offer = Offer(name="meat", kind="discount", pct=25, categories=("meat",), start_day=5,
                  days=30, target=("meat=yes",))
    _agree(twins, build_effect(offer, twins),
           ("visits", "revenue", "margin", "cost", "redemptions"))


def test_engines_agree_under_a_membership() -> None:
    p = TwinParams.synthetic(1000, "grocery", seed=4)
    offer = Offer(name="prime", kind="membership", monthly_fee=29, pct=5, days=30)
    _agree(p, build_effect(offer, p), ("visits", "revenue", "cost", "redemptions", "income"))


def test_a_detectably_different_rule_would_fail_the_check(twins: TwinParams,
                                                         ref_plain: RunResult) -> None:
    """The agreement check has power: 10% more visits in one engine is caught."""
    ref = ref_plain
    faster = TwinParams(**{**_fields(twins),
                           "visit_rate": np.minimum(twins.visit_rate * 1.1, 1.0)})
    vec = [_run(faster, None, "vectorised", seed=100 + r) for r in range(6)]
    totals = np.array([v.daily["visits"].sum() for v in vec])
    assert abs(ref.daily["visits"].sum() - totals.mean()) > 4 * totals.std(ddof=1)


def _fields(p: TwinParams) -> dict[str, object]:
    from dataclasses import fields
    return {f.name: getattr(p, f.name) for f in fields(p)}


@pytest.mark.parametrize("engine", ["vectorised", "reference"])
def test_common_random_numbers_isolate_the_offer(engine: str) -> None:
    p = TwinParams.synthetic(400, "grocery", seed=8)
    offer = Offer(name="pets", kind="discount", pct=20, categories=("pet_food",),
                  target=("pet=yes",), days=20)
    e = build_effect(offer, p)
    tr = MarketModel(p, effect=e, engine=engine, seed=9).run(30)
    ct = MarketModel(p, effect=e.as_control(), engine=engine, seed=9).run(30)
    out = ~e.targeted
    np.testing.assert_array_equal(tr.totals.visits[out], ct.totals.visits[out])
    np.testing.assert_allclose(tr.totals.revenue[out], ct.totals.revenue[out], rtol=1e-6)
    np.testing.assert_array_equal(tr.exposed, ct.exposed)
    assert tr.totals.cost[e.targeted].sum() > 0 and ct.totals.cost.sum() == 0
    # a visit lift only adds visits: the control's purchase days are a subset
    assert np.all(tr.totals.visits >= ct.totals.visits)


def test_runs_are_reproducible_by_seed(twins: TwinParams) -> None:
    a, b, c = (_run(twins, None, "vectorised", s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.totals.revenue, b.totals.revenue)
    assert not np.array_equal(a.totals.revenue, c.totals.revenue)


def test_mesa_model_agents_and_datacollector(twins: TwinParams) -> None:
    small = twins.subset(np.arange(50))
    m = MarketModel(small, engine="vectorised", seed=2)
    assert len(m.agents) == 50 and all(isinstance(a, CustomerTwin) for a in m.agents)
    before = [a.state for a in m.agents]
    m.step()
    assert [a.state for a in m.agents] == before  # the vectorised day never touches agents
    run = m.run(9)
    frame = m.datacollector.get_model_vars_dataframe()
    assert len(frame) == 10 and list(frame["visits"]) == list(run.daily["visits"])
    by_index = {a.index: a.state for a in m.agents}
    assert [by_index[i].active for i in range(50)] == run.active.tolist()
    assert len(MarketModel(twins, engine="vectorised", seed=1, agent_limit=100).agents) == 0
    with pytest.raises(ValueError, match="engine"):
        MarketModel(small, engine="gpu")


@pytest.mark.parametrize("engine", ["vectorised", "reference"])
def test_takers_churn_less_only_while_the_offer_runs(engine: str) -> None:
    p = TwinParams.synthetic(400, "grocery", seed=8)
    p = replace(p, churn_hazard=np.full(p.n, 0.01, dtype=np.float32))  # churn to see
    offer = Offer(name="pets", kind="discount", pct=20, categories=("pet_food",),
                  target=("pet=yes",), days=20)
    keen = ParametricResponse(taker_retention=1.0)  # most twins take it: an effect to see
    keen = replace(keen, intercept={**keen.intercept, "discount": 4.0})
    e = build_effect(offer, p, response=keen)
    # the takers' multiplier 1 - 0.2, weighted by each twin's chance of taking the offer
    want = 1.0 - 0.2 * e.p_event[e.targeted]
    assert np.allclose(e.contact_churn_mult[e.targeted], want, atol=1e-3)
    assert e.contact_churn_mult[e.targeted].std() > 0

    def alive(effect: OfferEffect, days: int) -> np.ndarray:
        return MarketModel(p, effect=effect, engine=engine, seed=9).run(days).active

    tr, ct = alive(e, 20), alive(e.as_control(), 20)
    # common random numbers: a lower hazard only keeps twins, never loses one
    assert np.all(tr >= ct) and tr[e.targeted].sum() > ct[e.targeted].sum()
    np.testing.assert_array_equal(tr[~e.targeted], ct[~e.targeted])
    # without the takers' lower churn the arms keep the same twins
    none = build_effect(offer, p, response=replace(keen, taker_retention=0.0))
    np.testing.assert_array_equal(alive(none, 20), ct)


@pytest.mark.parametrize("engine", ["vectorised", "reference"])
def test_a_discount_is_taken_once_and_redeemed_on_covered_visits(twins: TwinParams,
                                                                 engine: str) -> None:
    """Only a discount's takers redeem (share p_event of the exposed, binomial 4-sd band),
    on visits holding a covered item, with the covered spend of such a visit: its expected
    cost per exposed twin is that of the same effect redeemed on every visit with chance
    p_event (use_p = 1), within 4 sd of the replications."""
    offer = Offer(name="meat", kind="discount", pct=20, categories=("meat",), start_day=3,
                  days=21)
    eff = build_effect(offer, twins)
    assert eff.terms.takers and 0.05 < eff.use_p.mean() < 0.95
    every_visit = replace(eff, use_p=np.ones(twins.n, dtype=np.float32))
    runs = range(4) if engine == "reference" else range(12)
    taken, base = ([_run(twins, e, engine, seed=50 + r) for r in runs]
                   for e in (eff, every_visit))
    for r in taken:
        exposed = r.exposed.sum()
        p = float(eff.p_event[r.exposed].mean())
        takers = r.redeemed.sum()  # at most the takers: some takers never bought meat
        assert takers <= p * exposed + 4 * np.sqrt(exposed * p * (1 - p))
    # with use_p = 1 a taker redeems on every window visit: redeemers ≈ takers who visited
    b = base[0]
    assert b.redeemed.sum() > np.mean([r.redeemed.sum() for r in taken])
    cost_t = np.array([r.totals.cost.sum() for r in taken])
    cost_b = np.array([r.totals.cost.sum() for r in base])
    se = np.sqrt(cost_t.var(ddof=1) / len(cost_t) + cost_b.var(ddof=1) / len(cost_b))
    assert abs(cost_t.mean() - cost_b.mean()) < 4 * se
