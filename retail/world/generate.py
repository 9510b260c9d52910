"""Generate a synthetic world: people, merchants, a year of purchases, past campaigns.

Every random stream is a ``numpy.random.Generator`` spawned from one SeedSequence (people,
then per merchant: selection, parameters, market, ids, campaigns), and daily draws are
counter-based (:mod:`retail.world.rng`), so the same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from retail.schema import EXPOSURES_SCHEMA
from retail.world import tables
from retail.world.behaviour import Effect, Market, Outcome, State, make_market, step_day
from retail.world.campaigns import CampaignPlan, cohort_mask, plans_for
from retail.world.people import (
    N_DAYS,
    People,
    Population,
    make_people,
    make_population,
    merchant_bit,
    select_customers,
)
from retail.world.personas import MERCHANTS, SCALES, WorldMerchant
from retail.world.response import compile_offer
from retail.world.truth import TRUTH_DIR, write_merchant_truth, write_persons

__all__ = ["START", "MerchantSummary", "generate_world"]

START = dt.date(2025, 1, 1)
PEOPLE_PER_CUSTOMER = 1.6
Progress = Callable[[str, int, int], None]  # (merchant_id, days done, days total)


@dataclass(frozen=True, kw_only=True)
class MerchantSummary:
    merchant_id: str
    merchant_type: str
    customers: int
    transactions: int
    campaigns: int
    exposures: int


def generate_world(out: str | Path, *, scale: str = "small", seed: int = 7,
                   merchants: tuple[str, ...] | None = None,
                   progress: Progress | None = None) -> list[MerchantSummary]:
    """Write a world folder (``world.json``, one folder per merchant, ``_truth``)."""
    if scale not in SCALES:
        raise ValueError(f"scale: unknown {scale!r}; use one of {sorted(SCALES)}")
    chosen = [m for m in MERCHANTS if merchants is None or m.merchant_id in merchants]
    root = Path(out)
    truth = root / TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    n1 = SCALES[scale]
    ss_people, ss_wallet, ss_merchants = np.random.SeedSequence(seed).spawn(3)
    people = make_people(np.random.default_rng(ss_people), int(PEOPLE_PER_CUSTOMER * n1))
    streams = dict(zip([m.merchant_id for m in MERCHANTS], ss_merchants.spawn(len(MERCHANTS)),
                       strict=True))
    sel = {m.merchant_id: select_customers(np.random.default_rng(streams[m.merchant_id].spawn(
        1)[0]), people, m, max(1, round(m.size * n1))) for m in MERCHANTS}
    shops_at = np.zeros(people.n, dtype=np.int64)
    for mid, persons in sel.items():
        shops_at[persons] |= merchant_bit(mid)
    wallet = tables.customer_ids(np.random.default_rng(ss_wallet), "wl", people.n)
    write_persons(truth, people, START, wallet.to_numpy())
    summaries = [_merchant(root, m, people, sel[m.merchant_id], shops_at, streams[m.merchant_id],
                           progress) for m in chosen]
    _write_world_json(root, scale, seed, [m.merchant_id for m in chosen])
    (truth / "truth.json").write_text(json.dumps({
        "schema_version": 1, "seed": seed, "scale": scale, "start": START.isoformat(),
        "n_days": N_DAYS, "people": people.n,
        "merchants": {s.merchant_id: {"customers": s.customers,
                                      "transactions": s.transactions} for s in summaries},
    }, indent=2))
    return summaries


def _write_world_json(root: Path, scale: str, seed: int, ids: list[str]) -> None:
    end = START + dt.timedelta(days=N_DAYS - 1)
    (root / "world.json").write_text(json.dumps({
        "schema_version": 1, "kind": "synthetic", "scale": scale, "seed": seed,
        "merchants": ids, "truth_dir": TRUTH_DIR, "start": START.isoformat(),
        "end": end.isoformat()}, indent=2, ensure_ascii=False) + "\n")


def _merchant(root: Path, m: WorldMerchant, people: People, persons: np.ndarray,
              shops_at: np.ndarray, ss: np.random.SeedSequence,
              progress: Progress | None) -> MerchantSummary:
    _, s_params, s_market, s_ids, s_camp, s_cust = ss.spawn(6)
    folder = root / m.merchant_id
    folder.mkdir(parents=True, exist_ok=True)
    mt = m.merchant_type
    pop = make_population(np.random.default_rng(s_params), people, persons, m, shops_at)
    market = make_market(mt, np.random.default_rng(s_market), START)
    ids = tables.customer_ids(np.random.default_rng(s_ids), m.prefix, pop.n)
    _write_merchant_json(folder, m)
    tables.customers_frame(ids, pop, mt, START, np.random.default_rng(s_cust)).write_parquet(
        folder / "customers.parquet")
    state = State.fresh(pop.n, market.n_cat)
    writer = tables.TransactionWriter(folder / "transactions.parquet", ids, pop, market, pop.key)
    camp_rows, exposures = _simulate_year(m, pop, state, market, ids, writer,
                                          np.random.default_rng(s_camp), progress)
    rows = writer.close()
    tables.campaigns_frame(camp_rows).write_parquet(folder / "campaigns.parquet")
    exp = pl.concat(exposures) if exposures else pl.DataFrame(schema=EXPOSURES_SCHEMA)
    exp.write_parquet(folder / "exposures.parquet")
    write_merchant_truth(root / TRUTH_DIR, m.merchant_id, ids, pop, state, market)
    return MerchantSummary(merchant_id=m.merchant_id, merchant_type=mt, customers=pop.n,
                           transactions=rows, campaigns=len(camp_rows), exposures=exp.height)


def _write_merchant_json(folder: Path, m: WorldMerchant) -> None:
    (folder / "merchant.json").write_text(json.dumps({
        "schema_version": 1, "merchant_id": m.merchant_id, "name": m.name,
        "merchant_type": m.merchant_type, "regions": list(m.regions), "currency": "SEK",
        "period_start": START.isoformat(),
        "period_end": (START + dt.timedelta(days=N_DAYS - 1)).isoformat()},
        indent=2, ensure_ascii=False) + "\n")


def _simulate_year(m: WorldMerchant, pop: Population, state: State, market: Market,
                   ids: pl.Series, writer: tables.TransactionWriter, rng: np.random.Generator,
                   progress: Progress | None) -> tuple[list[dict[str, object]], list[pl.DataFrame]]:
    plans = {p.start: p for p in plans_for(m.merchant_id, m.merchant_type)}
    camp_rows: list[dict[str, object]] = []
    exposures: list[pl.DataFrame] = []
    live: tuple[CampaignPlan, np.ndarray, Effect, Outcome] | None = None
    for day in range(N_DAYS):
        if day in plans and live is None:
            live = _launch(plans[day], m, pop, state, market, rng)
        effect, outcome = (live[2], live[3]) if live is not None else (None, None)
        writer.add(day, step_day(day, pop, state, market, pop.key, effect, outcome))
        if live is not None and day == min(live[2].end, N_DAYS) - 1:
            plan, cohort, eff, out = live
            cid = f"{m.merchant_id}-c{len(camp_rows) + 1}"
            camp_rows.append({"campaign_id": cid, "name": plan.offer.name,
                              "start": START + dt.timedelta(days=plan.start),
                              "end": START + dt.timedelta(days=day),
                              "offer": plan.offer.to_json()})
            exposures.append(tables.exposures_frame(cid, ids, cohort, eff.exposed, out))
            live = None
        if (START + dt.timedelta(days=day + 1)).day == 1 or day == N_DAYS - 1:
            writer.flush()
            if progress is not None:
                progress(m.merchant_id, day + 1, N_DAYS)
    return camp_rows, exposures


def _launch(plan: CampaignPlan, m: WorldMerchant, pop: Population, state: State,
            market: Market, rng: np.random.Generator
            ) -> tuple[CampaignPlan, np.ndarray, Effect, Outcome]:
    cohort = cohort_mask(plan, m.merchant_type, pop.signup_day, state.last_visit,
                         state.last_buy)
    treated = cohort & (rng.random(pop.n) < plan.treat_share)
    effect = compile_offer(plan.offer, pop, market, pop.key, start=plan.start, exposed=treated)
    return plan, cohort, effect, Outcome.zeros(pop.n)

