"""Nature's private records (``<world>/_truth``): who is who, their parameters, end state.

Layout::

    _truth/truth.json                 seed, scale, period, merchants
    _truth/persons.parquet            person_id, wallet_id, persona, region, life facts, car
    _truth/<merchant>/customers.parquet   customer_id, person_id and every behaviour parameter
    _truth/<merchant>/state.parquet       end-of-period state (active, stock, last purchases)
    _truth/<merchant>/market.json         the store-promotion calendar
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from retail.schema import MERCHANT_TYPES, REGIONS
from retail.world.behaviour import Market, State, make_market
from retail.world.people import People, Population
from retail.world.personas import PERSONAS

__all__ = ["MerchantTruth", "read_merchant_truth", "read_truth_info", "write_merchant_truth",
           "write_persons"]

TRUTH_DIR = "_truth"


def write_persons(truth: Path, people: People, start: dt.date,
                  wallet: np.ndarray) -> None:
    end_day = 365
    car_dates = np.where(np.isnan(people.car_day), 0, np.floor(people.car_day)).astype(np.int32)
    epoch = (start - dt.date(1970, 1, 1)).days
    pl.DataFrame({
        "person_id": np.arange(people.n, dtype=np.int64),
        "wallet_id": wallet,
        "persona": pl.Series([p.name for p in PERSONAS])[people.persona.astype(np.int64)],
        "region": pl.Series([r.name for r in REGIONS])[people.region.astype(np.int64)],
        "pet": people.pet, "dog": people.dog, "cat": people.cat, "baby": people.baby,
        "kids": people.kids, "menswear": people.menswear, "car_1": people.car_1,
        "vehicle_purchase_date": pl.Series(epoch + car_dates).cast(pl.Date).scatter(
            np.flatnonzero(~people.car_1), None),
        "vehicle_age_at_end_years": np.where(people.car_1, (end_day - people.car_day) / 365.0,
                                             np.nan),
    }).write_parquet(truth / "persons.parquet")


def write_merchant_truth(truth: Path, merchant_id: str, ids: pl.Series, pop: Population,
                         state: State, market: Market) -> None:
    d = truth / merchant_id
    d.mkdir(parents=True, exist_ok=True)
    cats = MERCHANT_TYPES[market.merchant_type].categories
    cols: dict[str, Any] = {"customer_id": ids}
    for f in fields(pop):
        arr = getattr(pop, f.name)
        if f.name == "affinity":
            cols.update({f"affinity__{c}": arr[:, j] for j, c in enumerate(cats)})
        else:
            cols[f.name] = arr
    pl.DataFrame(cols).write_parquet(d / "customers.parquet")
    st: dict[str, Any] = {"customer_id": ids, "active": state.active, "stock": state.stock,
                          "last_visit": state.last_visit}
    st.update({f"last_buy__{c}": state.last_buy[:, j] for j, c in enumerate(cats)})
    pl.DataFrame(st).write_parquet(d / "state.parquet")
    (d / "market.json").write_text(json.dumps(
        {"merchant_type": market.merchant_type, "start": market.start.isoformat(),
         "promo": market.promo.astype(int).tolist()}))


class MerchantTruth:
    """Everything nature needs to continue one merchant's customers after the period."""

    def __init__(self, ids: pl.Series, pop: Population, state: State, market: Market,
                 n_days: int) -> None:
        self.ids, self.pop, self.state, self.market, self.n_days = ids, pop, state, market, n_days


def read_truth_info(world_dir: str | Path) -> dict[str, Any]:
    path = Path(world_dir) / TRUTH_DIR / "truth.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a world's ground truth ({exc}); generate the world with "
                         "'twinsim world generate'") from None


def read_merchant_truth(world_dir: str | Path, merchant_id: str) -> MerchantTruth:
    info = read_truth_info(world_dir)
    d = Path(world_dir) / TRUTH_DIR / merchant_id
    if merchant_id not in info["merchants"]:
        raise ValueError(f"merchant_id: {merchant_id!r} is not in this world; known: "
                         f"{sorted(info['merchants'])}")
    cdf = pl.read_parquet(d / "customers.parquet")
    sdf = pl.read_parquet(d / "state.parquet")
    m = json.loads((d / "market.json").read_text())
    mt = m["merchant_type"]
    cats = MERCHANT_TYPES[mt].categories
    kw: dict[str, np.ndarray] = {}
    for f in fields(Population):
        if f.name == "affinity":
            kw[f.name] = np.stack([cdf[f"affinity__{c}"].to_numpy() for c in cats], axis=1)
        else:
            kw[f.name] = cdf[f.name].to_numpy()
    state = State(active=sdf["active"].to_numpy().copy(), stock=sdf["stock"].to_numpy().copy(),
                  last_visit=sdf["last_visit"].to_numpy().copy(),
                  last_buy=np.stack([sdf[f"last_buy__{c}"].to_numpy() for c in cats], axis=1))
    start = dt.date.fromisoformat(m["start"])
    market = make_market(mt, np.random.default_rng(0), start)
    market = Market(**{**{f.name: getattr(market, f.name) for f in fields(market)},
                       "promo": np.array(m["promo"], dtype=bool)})
    return MerchantTruth(cdf["customer_id"], Population(**kw), state, market,
                         int(info["n_days"]))
