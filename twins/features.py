"""Owner side: one row of public attribute codes per consenting customer.

``features`` turns a merchant's raw tables into the feature table that every release is
measured on. It is built with the Polars lazy API (no per-row Python) in three passes over
the window's transactions: purchase days, customer totals, weekly spend by week parity.
Each consenting customer (``consent_analytics``) contributes exactly one row, including
customers without purchases (they get the neutral levels listed in ``_EMPTY``); customers
without consent contribute nothing. ``customer_id`` stays owner side: it never leaves.

Definitions (public, fixed): the window is the ``window_days`` days ending on
``period_end`` (inclusive); a *visit* is a purchase day; membership in the window starts at
``max(signup_date, window start)`` and counts at least 28 days. ``promo_share`` leaves out
the purchase days inside the customer's own treated-arm campaign windows (a campaign's
redeemed lines are promotion lines: counting them would make past takers look promotion-prone
because they took it, and calibration would learn that takers take offers; a customer who
bought only then keeps the share over all days). See ``twins.schema`` for each attribute's
bins and the rhythm rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from retail.schema import MERCHANT_TYPES, TIERS, region_names
from twins.schema import CATEGORY_PROFILE, LIFE_TAGS, SCHEMA

__all__ = ["CHUNK_CUSTOMERS", "RHYTHM_MIN_ACTIVE_WEEKS", "features",
           "tables_of", "tag_spend_sums"]

RHYTHM_MIN_ACTIVE_WEEKS = 8
_TWO_WEEK_T = 3.0          # Welch t of even vs odd weekly spend
_TWO_WEEK_REL = 0.3        # and a difference of at least 30% of mean weekly spend
_WEEKLY_SHARE = 0.75       # weeks with a purchase, for "weekly"
_MIN_SPAN_DAYS = 28
CHUNK_CUSTOMERS = 50_000  # bounds the per-customer-day group-by at large owners
# Neutral values for customers without purchases in the window (then bin as usual).
_EMPTY = {"tier_mean": 1.0, "weekend_share": 2 / 7, "online_share": 0.0, "cv": 0.0}


def tables_of(merchant_tables: Any, name: str) -> pl.LazyFrame:
    """A table of a merchant as a LazyFrame, from an object with attributes or a mapping."""
    table = (merchant_tables[name] if isinstance(merchant_tables, Mapping)
             else getattr(merchant_tables, name, None))
    if table is None:
        raise ValueError(f"merchant tables: no {name!r} table given")
    return table.lazy() if isinstance(table, pl.DataFrame) else table


def _transactions(tables: Any, merchant_type: str, start: dt.date, window_days: int,
                  consenting: pl.LazyFrame, *, with_category: bool = False) -> pl.LazyFrame:
    """Window transactions of consenting customers, keyed by (customer index, day offset).

    Strings are hashed once (the join); every later group-by runs on one integer key.
    """
    mtype = MERCHANT_TYPES[merchant_type]
    tag_of = [LIFE_TAGS.index(mtype.life[c]) if c in mtype.life else 255
              for c in mtype.categories]
    t0 = dt.datetime.combine(start, dt.time())
    t1 = t0 + dt.timedelta(days=window_days)
    return (
        tables_of(tables, "transactions")
        .filter((pl.col("timestamp") >= t0) & (pl.col("timestamp") < t1))
        .join(consenting, on="customer_id", how="inner")
        .select(
            (pl.col("cix").cast(pl.Int64) * window_days
             + (pl.col("timestamp") - pl.lit(t0)).dt.total_days()).alias("key"),
            "amount", "quantity",
            # narrow columns (1 byte each): at 50M rows every byte per row is 50 MB
            "organic", "promo",
            pl.col("tier").cast(pl.Enum(list(TIERS))).to_physical().cast(pl.UInt8)
            .alias("tier_idx"),
            (pl.col("channel").cast(pl.String) == "online").alias("online"),
            pl.col("category").cast(pl.Enum(list(mtype.categories))).to_physical()
            .replace_strict(list(range(len(tag_of))), tag_of, return_dtype=pl.UInt8)
            .alias("tag"),
            *([pl.col("category").cast(pl.Enum(list(mtype.categories))).to_physical()
               .cast(pl.UInt8).alias("cat")] if with_category else []),
        )
    )


def _customer_sums(tx: pl.LazyFrame, tags: list[str], window_days: int) -> pl.LazyFrame:
    """Spend-weighted totals straight from transactions (no per-day detail needed)."""
    amount = pl.col("amount")
    return (
        tx.group_by((pl.col("key") // window_days).alias("cix"))
        .agg(amount.sum().alias("spend"), pl.col("quantity").sum().alias("items"),
             (amount * pl.col("organic").cast(pl.Float64)).sum().alias("organic"),
             (amount * pl.col("promo").cast(pl.Float64)).sum().alias("promo"),
             (amount * pl.col("tier_idx").cast(pl.Float64)).sum().alias("tier"),
             # arithmetic masks, not per-group filters: much faster in the group-by
             *[(amount * (pl.col("tag") == LIFE_TAGS.index(t))).sum().alias(f"tag_{t}")
               for t in tags])
    )


def _days(tx: pl.LazyFrame, start: dt.date, window_days: int) -> pl.LazyFrame:
    """Purchase days: a narrow table (key, amount, online) for visit-level statistics."""
    day = pl.col("key") % window_days
    return (
        tx.group_by("key")
        .agg(pl.col("amount").sum(), pl.col("online").any(),
             (pl.col("amount") * pl.col("promo").cast(pl.Float64)).sum().alias("promo_amount"))
        .with_columns(cix=pl.col("key") // window_days, day=day, week=day // 7,
                      weekend=(day + start.weekday()) % 7 >= 5)
    )


def _optional(merchant_tables: Any, name: str) -> pl.LazyFrame | None:
    try:
        return tables_of(merchant_tables, name)
    except (KeyError, ValueError):
        return None


def _treated_window_sums(merchant_tables: Any, cust: pl.LazyFrame, days: pl.LazyFrame,
                         start: dt.date, window_days: int) -> pl.LazyFrame | None:
    """Per customer index: spend and promotion spend on purchase days inside the windows
    (start..end, inclusive) of the campaigns it was in the treated arm of (each day once)."""
    exposures, campaigns = (_optional(merchant_tables, "exposures"),
                            _optional(merchant_tables, "campaigns"))
    if exposures is None or campaigns is None:
        return None
    windows = (campaigns.select(
        "campaign_id", (pl.col("start") - pl.lit(start)).dt.total_days().alias("lo"),
        (pl.col("end") - pl.lit(start)).dt.total_days().alias("hi"))
        .filter((pl.col("hi") >= 0) & (pl.col("lo") <= window_days - 1)))
    treated = (exposures.filter(pl.col("arm").cast(pl.String) == "treatment")
               .select("campaign_id", "customer_id")
               .join(cust.select("customer_id", "cix"), on="customer_id", how="inner")
               .join(windows, on="campaign_id", how="inner")
               .select("cix", "lo", "hi"))
    # one pass: each purchase day meets its customer's treated windows (a handful at most)
    return (days.select("key", "cix", "day", "amount", "promo_amount")
            .join(treated, on="cix", how="inner")
            .filter(pl.col("day").is_between(pl.col("lo"), pl.col("hi")))
            .unique(subset="key")
            .group_by("cix")
            .agg(pl.col("amount").sum().alias("treated_spend"),
                 pl.col("promo_amount").sum().alias("treated_promo")))


def _visit_stats(days: pl.LazyFrame) -> pl.LazyFrame:
    return days.group_by("cix").agg(
        pl.len().alias("visits"), pl.col("amount").std().alias("basket_std"),
        pl.col("online").sum().alias("online_days"),
        pl.col("weekend").sum().alias("weekend_days"), pl.col("day").max().alias("last_day"))


def _weekly(days: pl.LazyFrame, window_days: int) -> pl.LazyFrame:
    weeks = window_days // 7 + 1
    s = pl.col("s")
    even = pl.col("week") % 2 == 0
    return (
        days.group_by((pl.col("cix") * weeks + pl.col("week")).alias("wkey"))
        .agg(pl.col("amount").sum().alias("s"), pl.col("week").first())
        .with_columns(cix=pl.col("wkey") // weeks)
        .group_by("cix")
        .agg(pl.len().alias("active_weeks"),
             s.filter(even).sum().alias("se"), s.filter(~even).sum().alias("so"),
             (s * s).filter(even).sum().alias("sse"), (s * s).filter(~even).sum().alias("sso"))
    )


def _rhythm(start: dt.date, end: dt.date) -> pl.Expr:
    """Rhythm code from weekly spend by parity (zero weeks included, via known counts)."""
    ws = (pl.col("member_start") - pl.lit(start)).dt.total_days() // 7
    we = (end - start).days // 7
    n = we - ws + 1
    n_e = we // 2 - (ws - 1) // 2
    n_o = n - n_e
    se, so = pl.col("se").fill_null(0.0), pl.col("so").fill_null(0.0)
    m_e, m_o = se / n_e, so / n_o
    v_e = (pl.col("sse").fill_null(0.0) - n_e * m_e * m_e) / (n_e - 1)
    v_o = (pl.col("sso").fill_null(0.0) - n_o * m_o * m_o) / (n_o - 1)
    diff = (m_e - m_o).abs()
    t = diff / (v_e.clip(0.0) / n_e + v_o.clip(0.0) / n_o + 1e-12).sqrt()
    active = pl.col("active_weeks").fill_null(0)
    two_week = ((n_e >= 4) & (n_o >= 4) & (t >= _TWO_WEEK_T)
                & (diff >= _TWO_WEEK_REL * (se + so) / n))
    return (pl.when(active < RHYTHM_MIN_ACTIVE_WEEKS).then(3)
            .when(two_week).then(1)
            .when(active >= _WEEKLY_SHARE * n).then(0)
            .otherwise(2).cast(pl.UInt8))


def _ratio(num: str, den: str, default: float) -> pl.Expr:
    d = pl.col(den).fill_null(0)
    return pl.when(d > 0).then(pl.col(num).fill_null(0) / d).otherwise(default)


def _values(end: dt.date, window_days: int, tags: list[str], has_vehicle: bool) -> list[pl.Expr]:
    """Raw per-customer values named after the attribute they are binned into."""
    visits = pl.col("visits").fill_null(0)
    span = ((pl.lit(end) - pl.col("member_start")).dt.total_days() + 1).clip(
        _MIN_SPAN_DAYS, window_days)
    vehicle = ((pl.lit(end) - pl.col("vehicle_purchase_date")).dt.total_days() / 365.25
               if has_vehicle else pl.lit(None, pl.Float64))
    out = [
        ((pl.lit(end) - pl.col("signup_date")).dt.total_days() / 365.25).alias("tenure"),
        (visits / span * 30.0).alias("frequency"),
        (window_days - 1 - pl.col("last_day")).fill_null(10_000).alias("recency"),
        _ratio("spend", "visits", 0.0).alias("basket_value"),
        _ratio("items", "visits", 0.0).alias("basket_size"),
        _ratio("tier", "spend", _EMPTY["tier_mean"]).alias("tier"),
        _ratio("organic", "spend", 0.0).alias("organic_share"),
        pl.when(pl.col("spend").fill_null(0) - pl.col("treated_spend") > 0)
        .then((pl.col("promo").fill_null(0) - pl.col("treated_promo"))
              / (pl.col("spend").fill_null(0) - pl.col("treated_spend")))
        .otherwise(_ratio("promo", "spend", 0.0)).alias("promo_share"),
        _ratio("weekend_days", "visits", _EMPTY["weekend_share"]).alias("weekday_pattern"),
        pl.when((visits >= 2) & (pl.col("spend") > 0))
        .then(pl.col("basket_std") * visits / pl.col("spend"))
        .otherwise(_EMPTY["cv"]).alias("volatility"),
        _ratio("online_days", "visits", _EMPTY["online_share"]).alias("channel"),
        vehicle.alias("vehicle_age"),
    ]
    out += [(_ratio(f"tag_{t}", "spend", 0.0) if t in tags else pl.lit(0.0)).alias(t)
            for t in LIFE_TAGS]
    return out


def features(merchant_tables: Any, merchant_type: str, period_end: dt.date, *,
             window_days: int = 365, chunk_customers: int | None = CHUNK_CUSTOMERS
             ) -> pl.DataFrame:
    """Feature table: ``customer_id`` plus one UInt8 code column per ``SCHEMA`` attribute.

    Customers are processed in chunks of ``chunk_customers`` (``None``: all at once); each
    row depends only on its own customer's rows, so the result is the same, while the
    group-by tables (one entry per customer-day) shrink with the chunk.
    """
    if chunk_customers is not None and chunk_customers < 1:
        raise ValueError(f"chunk_customers: must be >= 1 or None, got {chunk_customers}")
    customers = tables_of(merchant_tables, "customers")
    ids = customers.filter(pl.col("consent_analytics")).select("customer_id").collect()
    if chunk_customers is None or ids.height <= chunk_customers:
        return _features(merchant_tables, merchant_type, period_end, window_days)
    tx = tables_of(merchant_tables, "transactions")
    parts = []
    for lo in range(0, ids.height, chunk_customers):
        part = ids["customer_id"].slice(lo, chunk_customers).implode()
        sub: dict[str, pl.LazyFrame] = {
            "customers": customers.filter(pl.col("customer_id").is_in(part)),
            "transactions": tx.filter(pl.col("customer_id").is_in(part))}
        for name in ("campaigns", "exposures"):
            table = _optional(merchant_tables, name)
            if table is not None:
                sub[name] = table
        parts.append(_features(sub, merchant_type, period_end, window_days))
    return pl.concat(parts)


def _features(merchant_tables: Any, merchant_type: str, period_end: dt.date,
              window_days: int) -> pl.DataFrame:
    if merchant_type not in MERCHANT_TYPES:
        raise ValueError(f"merchant_type: unknown value {merchant_type!r}; "
                         f"known: {sorted(MERCHANT_TYPES)}")
    if window_days < _MIN_SPAN_DAYS:
        raise ValueError(f"window_days: must be >= {_MIN_SPAN_DAYS}, got {window_days}")
    start = period_end - dt.timedelta(days=window_days - 1)
    tags = sorted(set(MERCHANT_TYPES[merchant_type].life.values()), key=LIFE_TAGS.index)
    customers = tables_of(merchant_tables, "customers")
    has_vehicle = "vehicle_purchase_date" in customers.collect_schema().names()
    cust = customers.filter(pl.col("consent_analytics")).select(
        "customer_id", "region", "signup_date",
        *(["vehicle_purchase_date"] if has_vehicle else [])
    ).with_row_index("cix").with_columns(pl.col("cix").cast(pl.Int64))
    tx = _transactions(merchant_tables, merchant_type, start, window_days,
                       cust.select("customer_id", "cix"))
    days = _days(tx, start, window_days)
    wide = (cust.join(_customer_sums(tx, tags, window_days), on="cix", how="left")
            .join(_visit_stats(days), on="cix", how="left")
            .join(_weekly(days, window_days), on="cix", how="left")
            .with_columns(member_start=pl.max_horizontal("signup_date", pl.lit(start))))
    treated = _treated_window_sums(merchant_tables, cust, days, start, window_days)
    wide = (wide.join(treated, on="cix", how="left") if treated is not None
            else wide.with_columns(treated_spend=pl.lit(None, pl.Float64),
                                   treated_promo=pl.lit(None, pl.Float64)))
    wide = wide.with_columns(pl.col("treated_spend").fill_null(0.0),
                             pl.col("treated_promo").fill_null(0.0))
    codes = [
        pl.col("region").cast(pl.String).cast(pl.Enum(list(region_names()))).to_physical()
        .cast(pl.UInt8).alias("region"),
        _rhythm(start, period_end).alias("rhythm"),
        *[SCHEMA[a.name].bin_expr(pl.col(a.name)).alias(a.name)
          for a in SCHEMA.attributes if a.edges is not None],
    ]
    return (wide.with_columns(_values(period_end, window_days, tags, has_vehicle))
            .sort("cix").select("customer_id", *codes)
            .select("customer_id", *SCHEMA.names)
            .collect(engine="streaming"))


def tag_spend_sums(merchant_tables: Any, merchant_type: str, period_end: dt.date,
                   feature_table: pl.DataFrame, *, clamp_sek: float,
                   window_days: int = 365, chunk_customers: int | None = CHUNK_CUSTOMERS
                   ) -> dict[str, tuple[Any, Any]]:
    """Owner side: per life tag of this merchant type, the clamped spend on the tag's
    categories and the clamped total spend, summed per level (no, yes) of the customer's
    tag attribute, in integer cents: ``{tag: (tag_cents[2], total_cents[2])}``; under
    ``CATEGORY_PROFILE``, the clamped spend per category of the merchant type summed over all
    customers and its total: ``(category_cents[C], total_cents[1])``.

    Contribution bounding: a customer's window total ``T`` is clamped to ``clamp_sek`` and
    their tag and category spend scaled by the same factor (so their shares are kept); each
    customer adds to one cell of each tag table, by at most ``clamp_sek``, and to the
    category vector by at most ``clamp_sek`` in L1 (so in L2) norm (sensitivity, in cents).
    Only customers
    of ``feature_table`` (the consenting ones, whose tag level it holds) count. Customers are
    processed in chunks of ``chunk_customers`` (``None``: all at once), as in :func:`features`.
    """
    if not clamp_sek > 0:
        raise ValueError(f"clamp_sek: must be > 0, got {clamp_sek}")
    tags = sorted(set(MERCHANT_TYPES[merchant_type].life.values()), key=LIFE_TAGS.index)
    n_cat = len(MERCHANT_TYPES[merchant_type].categories)
    start = period_end - dt.timedelta(days=window_days - 1)
    ids = feature_table.select("customer_id", *tags).with_row_index("cix").with_columns(
        pl.col("cix").cast(pl.Int64))
    tx_all = tables_of(merchant_tables, "transactions")
    parts = []
    step = chunk_customers or max(ids.height, 1)
    for lo in range(0, ids.height, step):  # chunks of customers bound the group-by's memory
        chunk = ids.slice(lo, step)
        sub = {"transactions": tx_all.filter(pl.col("customer_id").is_in(
            chunk["customer_id"].implode()))}
        tx = _transactions(sub, merchant_type, start, window_days,
                           chunk.lazy().select("customer_id", "cix"), with_category=True)
        parts.append(tx.group_by((pl.col("key") // window_days).alias("cix"))
                     .agg(pl.col("amount").sum().alias("spend"),
                          *[(pl.col("amount") * (pl.col("tag") == LIFE_TAGS.index(t))).sum()
                            .alias(f"tag_{t}") for t in tags],
                          *[(pl.col("amount") * (pl.col("cat") == j)).sum().alias(f"cat_{j}")
                            for j in range(n_cat)])
                     .collect(engine="streaming"))
    sums = pl.concat(parts) if parts else pl.DataFrame(
        schema={"cix": pl.Int64, "spend": pl.Float64, **{f"tag_{t}": pl.Float64 for t in tags},
                **{f"cat_{j}": pl.Float64 for j in range(n_cat)}})
    wide = ids.join(sums, on="cix", how="left").fill_null(0.0)
    spend = wide["spend"].clip(0.0, None)
    scale = (clamp_sek / spend).clip(None, 1.0).fill_nan(1.0).fill_null(1.0)
    total = (spend * scale * 100).round().cast(pl.Int64)
    out: dict[str, tuple[Any, Any]] = {}
    for t in tags:
        part = (wide[f"tag_{t}"].clip(0.0, None) * scale * 100).round().cast(pl.Int64)
        level = wide[t].cast(pl.Int64).to_numpy()
        out[t] = (np.bincount(level, weights=part.to_numpy(), minlength=2).astype(np.int64),
                  np.bincount(level, weights=total.to_numpy(), minlength=2).astype(np.int64))
    # the category profile: each customer's clamped spend per category (scaled like the
    # total, so a customer's categories add up to at most the clamp), summed
    cats = np.array([int((wide[f"cat_{j}"].clip(0.0, None) * scale * 100).round().sum())
                     for j in range(n_cat)], dtype=np.int64)
    out[CATEGORY_PROFILE] = (cats, np.array([int(total.sum())], dtype=np.int64))
    return out
