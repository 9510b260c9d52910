"""From simulated arrays to the merchant folder's tables (exact retail.schema dtypes)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from retail.schema import (
    CAMPAIGNS_SCHEMA,
    EXPOSURES_SCHEMA,
    customers_schema,
    transactions_schema,
)
from retail.world import rng as crn
from retail.world.behaviour import SLOT_WHEN, Day, Market, Outcome
from retail.world.people import Population

__all__ = ["TransactionWriter", "campaigns_frame", "customer_ids", "customers_frame",
           "exposures_frame"]

_DICT_COLUMNS = ["customer_id", "store_id", "channel", "category", "tier"]
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_EPOCH = dt.date(1970, 1, 1)
_VEHICLE_MODELS = np.array(["Nordbil Kompakt", "Nordbil Kombi", "Nordbil SUV", "Nordbil EV"])


def customer_ids(rng: np.random.Generator, prefix: str, n: int) -> pl.Series:
    """Unique ids ``<prefix>_<9 hex>`` (12 bytes: stored inline by Polars' string views)."""
    vals = rng.choice(16**9, size=n, replace=False).astype(np.uint64)
    shifts = (4 * np.arange(8, -1, -1)).astype(np.uint64)
    digits = _HEX[((vals[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]
    head = np.frombuffer(f"{prefix}_".encode(), dtype=np.uint8)
    raw = np.concatenate([np.broadcast_to(head, (n, head.size)), digits], axis=1)
    width = raw.shape[1]
    text = np.ascontiguousarray(raw).view(f"S{width}").ravel().astype(f"U{width}")
    return pl.Series("customer_id", text, dtype=pl.String)


def _dates(start: dt.date, days: np.ndarray) -> pl.Series:
    epoch = (start - _EPOCH).days
    return pl.Series((epoch + days).astype(np.int32)).cast(pl.Date)


def customers_frame(ids: pl.Series, pop: Population, merchant_type: str, start: dt.date,
                    rng: np.random.Generator) -> pl.DataFrame:
    n = pop.n
    region = pl.Series(pop.region.astype(np.uint8)).cast(customers_schema(merchant_type)["region"])
    cols: dict[str, pl.Series] = {
        "customer_id": ids, "region": region,
        "signup_date": _dates(start, pop.signup_day.astype(np.int64)),
        "consent_analytics": pl.Series(rng.random(n) < 0.9),
        "consent_partner": pl.Series(rng.random(n) < 0.55),
    }
    if merchant_type == "car_brand":
        model = _VEHICLE_MODELS[rng.integers(0, _VEHICLE_MODELS.size, n)]
        cols["vehicle_model"] = pl.Series(model, dtype=pl.String)
        cols["vehicle_purchase_date"] = _dates(start, np.floor(pop.car_day).astype(np.int64))
    df = pl.DataFrame(cols)
    return df.select([pl.col(k).cast(v) for k, v in customers_schema(merchant_type).items()])


class TransactionWriter:
    """Buffers a month of daily purchases at a time and appends it to transactions.parquet."""

    def __init__(self, path: Path, ids: pl.Series, pop: Population, market: Market,
                 keys: np.ndarray) -> None:
        self.path, self.ids, self.pop, self.market, self.keys = path, ids, pop, market, keys
        self.schema = transactions_schema(market.merchant_type)
        self.parts: list[dict[str, np.ndarray]] = []
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: Future[None] | None = None
        self.day0_us = (market.start - _EPOCH).days * 86_400 * 10**6

    def add(self, day: int, d: Day) -> None:
        v = d.visitors
        u_chan, u_time = crn.pair(self.keys[v], day, SLOT_WHEN)
        online = u_chan < self.pop.online[v]
        h0, h1 = self.market.hours
        secs = (h0 * 3600 + np.floor(u_time * (h1 - h0) * 3600)).astype(np.int64)
        ts = self.day0_us + day * 86_400 * 10**6 + secs * 10**6
        store = np.where(online, 0, self.pop.store_id[v]).astype(np.int32)
        self.parts.append({
            "cust": v[d.vi].astype(np.int32), "ts": ts[d.vi], "store": store[d.vi],
            "channel": online[d.vi].astype(np.uint8), "cat": d.cat,
            "tier": d.tier.astype(np.uint8), "organic": d.organic, "qty": d.qty,
            "unit": d.unit, "amount": d.amount, "promo": d.promo})

    def flush(self) -> None:
        if not self.parts:
            return
        a = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        self.parts = []
        n = a["cust"].size
        s = self.schema
        df = pl.DataFrame({
            "transaction_id": pl.Series(np.arange(self.rows, self.rows + n, dtype=np.int64)),
            "customer_id": self.ids.gather(a["cust"]),
            "timestamp": pl.Series(a["ts"]).cast(pl.Datetime("us")),
            "store_id": pl.Series(a["store"]), "channel": pl.Series(a["channel"]).cast(
                s["channel"]), "category": pl.Series(a["cat"]).cast(s["category"]),
            "tier": pl.Series(a["tier"]).cast(s["tier"]), "organic": pl.Series(a["organic"]),
            "quantity": pl.Series(a["qty"].astype(np.int32)), "unit_price": pl.Series(a["unit"]),
            "amount": pl.Series(a["amount"]), "promo": pl.Series(a["promo"])})
        self.rows += n
        table = df.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd",
                                           compression_level=1, use_dictionary=_DICT_COLUMNS)
        # Compress and write in the background while the next month is simulated (pyarrow
        # releases the GIL); at most one month in flight bounds memory, order is kept.
        self._wait()
        self.pending = self.pool.submit(self.writer.write_table, table)

    def _wait(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None

    def close(self) -> int:
        self.flush()
        self._wait()
        self.pool.shutdown()
        if self.writer is None:  # no purchases at all: still write the empty, typed table
            pl.DataFrame(schema=self.schema).write_parquet(self.path)
        else:
            self.writer.close()
        return self.rows


def exposures_frame(campaign_id: str, ids: pl.Series, cohort: np.ndarray,
                    treated: np.ndarray, o: Outcome) -> pl.DataFrame:
    """One row per targeted customer (both arms) with outcomes in the campaign window."""
    idx = np.flatnonzero(cohort)
    df = pl.DataFrame({
        "campaign_id": pl.Series([campaign_id] * idx.size, dtype=pl.String),
        "customer_id": ids.gather(idx),
        "arm": pl.Series(np.where(treated[idx], 0, 1).astype(np.uint8)).cast(
            EXPOSURES_SCHEMA["arm"]),
        "redeemed": pl.Series(o.redemptions[idx] > 0),
        "redemptions": pl.Series(o.redemptions[idx].astype(np.int32)),
        "visits": pl.Series(o.visits[idx].astype(np.int32)),
        "spend": pl.Series(np.round(o.spend[idx], 2)),
        "discount_cost": pl.Series(np.round(o.discount_cost[idx], 2)),
    })
    return df.select([pl.col(k).cast(v) for k, v in EXPOSURES_SCHEMA.items()])


def campaigns_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CAMPAIGNS_SCHEMA)

