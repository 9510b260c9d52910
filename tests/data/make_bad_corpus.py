"""Build tests/data/good_merchant/ and the corpus of broken folders under tests/data/bad/.

Run from the repo root: ``.venv/bin/python tests/data/make_bad_corpus.py``. Each bad case is
the good folder with one corruption, plus ``expected.json`` written by hand here (not by the
loader): the rule, file, row, column and value the strict error must name, and how many rows
of each table lenient mode must quarantine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from retail.merchant import Merchant, MerchantInfo, write_merchant
from retail.schema import (
    CAMPAIGNS_SCHEMA,
    EXPOSURES_SCHEMA,
    MERCHANT_TYPES,
    customers_schema,
    transactions_schema,
)

HERE = Path(__file__).parent
GOOD = HERE / "good_merchant"
BAD = HERE / "bad"

INFO = MerchantInfo(merchant_id="grocery_test", name="Test Livs", merchant_type="grocery",
                    regions=("Stockholm", "Göteborg"), currency="SEK",
                    period_start=date(2025, 1, 1), period_end=date(2025, 12, 31))


def build_good() -> Merchant:
    rng = np.random.default_rng(20250101)
    n_c, n_t = 12, 40
    ids = [f"c{i:04d}" for i in range(1, n_c + 1)]
    customers = pl.DataFrame({
        "customer_id": ids,
        "region": ["Stockholm" if i % 3 else "Göteborg" for i in range(n_c)],
        "signup_date": [date(2023, 1, 1) + timedelta(days=int(d))
                        for d in rng.integers(0, 700, n_c)],
        "consent_analytics": [bool(b) for b in rng.random(n_c) < 0.8],
        "consent_partner": [bool(b) for b in rng.random(n_c) < 0.4],
    }, schema=customers_schema("grocery"))
    cats = MERCHANT_TYPES["grocery"].categories
    quantity = rng.integers(1, 5, n_t)
    price = np.round(rng.uniform(5, 120, n_t), 2)
    online = rng.random(n_t) < 0.3
    transactions = pl.DataFrame({
        "transaction_id": list(range(1, n_t + 1)),
        "customer_id": [ids[i] for i in rng.integers(0, n_c, n_t)],
        "timestamp": sorted(datetime(2025, 1, 2, 8) + timedelta(minutes=int(m))
                            for m in rng.integers(0, 360 * 24 * 60, n_t)),
        "store_id": [None if o else int(s) for o, s in zip(online, rng.integers(1, 4, n_t),
                                                           strict=True)],
        "channel": ["online" if o else "store" for o in online],
        "category": [cats[i] for i in rng.integers(0, len(cats), n_t)],
        "tier": [("budget", "standard", "premium")[i] for i in rng.integers(0, 3, n_t)],
        "organic": [bool(b) for b in rng.random(n_t) < 0.2],
        "quantity": quantity.tolist(),
        "unit_price": price.tolist(),
        "amount": np.round(quantity * price, 2).tolist(),
        "promo": [bool(b) for b in rng.random(n_t) < 0.1],
    }, schema=transactions_schema("grocery"))
    campaigns = pl.DataFrame({
        "campaign_id": ["cmp_001", "cmp_002"], "name": ["Spring dairy", "Pet week"],
        "start": [date(2025, 3, 1), date(2025, 9, 1)], "end": [date(2025, 3, 31),
                                                             date(2025, 9, 7)],
        "offer": ['{"kind": "discount", "pct": 10}', '{"kind": "cross_sell"}'],
    }, schema=CAMPAIGNS_SCHEMA)
    exposures = pl.DataFrame({
        "campaign_id": ["cmp_001"] * 5 + ["cmp_002"] * 3,
        "customer_id": ids[:8],
        "arm": ["treatment", "control"] * 4,
        "redeemed": [True, False, False, False, True, False, False, False],
        "redemptions": [1, 0, 0, 0, 2, 0, 0, 0],
        "visits": [3, 1, 0, 2, 4, 1, 0, 1],
        "spend": [250.0, 80.5, 0.0, 120.0, 310.25, 45.0, 0.0, 60.0],
        "discount_cost": [25.0, 0.0, 0.0, 0.0, 31.0, 0.0, 0.0, 0.0],
    }, schema=EXPOSURES_SCHEMA)
    return Merchant(info=INFO, customers=customers, transactions=transactions,
                    campaigns=campaigns, exposures=exposures)


def _set(df: pl.DataFrame, col: str, row: int, value: object, *,
         as_string: bool = False) -> pl.DataFrame:
    """Set one cell; ``as_string`` first turns the column into text so any junk fits."""
    series = df[col].cast(pl.String) if as_string else df[col]
    values = series.to_list()
    values[row] = value
    return df.with_columns(pl.Series(col, values, dtype=series.dtype))


Mutation = Callable[[dict[str, pl.DataFrame]], None]


def _case(expected: dict[str, object], mutate: Mutation) -> tuple[dict[str, object], Mutation]:
    return expected, mutate


def _owned_rows(good: Merchant, table: str, customer: str) -> int:
    return good.tables[table].filter(pl.col("customer_id") == customer).height


def cases(good: Merchant) -> dict[str, tuple[dict[str, object], Mutation]]:
    t = good.transactions
    n_t, n_c, n_e = t.height, good.customers.height, good.exposures.height
    c6 = good.customers["customer_id"][5]
    dup_cascade = {"customers": 1, "transactions": _owned_rows(good, "transactions", c6),
                   "exposures": _owned_rows(good, "exposures", c6)}

    def mut(table: str, col: str, row: int, value: object, as_string: bool = False
            ) -> Mutation:
        def apply(tables: dict[str, pl.DataFrame]) -> None:
            tables[table] = _set(tables[table], col, row, value, as_string=as_string)
        return apply

    def both(*ms: Mutation) -> Mutation:
        def apply(tables: dict[str, pl.DataFrame]) -> None:
            for m in ms:
                m(tables)
        return apply

    def exp(file: str, row: int | None, column: str, value: str | None, rule: str,
            quarantined: dict[str, int] | None = None, fatal: bool = False) -> dict[str, object]:
        return {"file": file, "row": row, "column": column, "value": value, "rule": rule,
                "fatal": fatal,
                "quarantined": {k: v for k, v in (quarantined or {}).items() if v}}

    q = float(t["quantity"][7])
    amount12 = round(float(t["amount"][12]) + 5.0, 2)
    return {
        "customers_missing_column": _case(
            exp("customers.parquet", None, "consent_partner", None, "missing_column",
                {"customers": n_c, "transactions": n_t, "exposures": n_e}),
            lambda ts: ts.update(customers=ts["customers"].drop("consent_partner"))),
        "customers_unknown_column": _case(
            exp("customers.parquet", None, "personnummer", None, "unknown_column"),
            lambda ts: ts.update(customers=ts["customers"].with_columns(
                personnummer=pl.lit("19800101-1234")))),
        "customers_null_region": _case(
            exp("customers.parquet", 2, "region", None, "null_required",
                {"customers": 1, "transactions": _owned_rows(good, "transactions", "c0003"),
                 "exposures": _owned_rows(good, "exposures", "c0003")}),
            mut("customers", "region", 2, None)),
        "customers_unknown_region": _case(
            exp("customers.parquet", 1, "region", "Malmö", "unknown_region",
                {"customers": 1, "transactions": _owned_rows(good, "transactions", "c0002"),
                 "exposures": _owned_rows(good, "exposures", "c0002")}),
            mut("customers", "region", 1, "Malmö")),
        "customers_future_signup": _case(
            exp("customers.parquet", 3, "signup_date", "2099-01-01", "future_timestamp",
                {"customers": 1, "transactions": _owned_rows(good, "transactions", "c0004"),
                 "exposures": _owned_rows(good, "exposures", "c0004")}),
            mut("customers", "signup_date", 3, date(2099, 1, 1))),
        "customers_duplicate_id": _case(
            exp("customers.parquet", 5, "customer_id", "c0005", "duplicate_id", dup_cascade),
            mut("customers", "customer_id", 5, "c0005")),
        "transactions_bad_type": _case(
            exp("transactions.parquet", 3, "quantity", "two", "bad_type", {"transactions": 1}),
            mut("transactions", "quantity", 3, "two", as_string=True)),
        "transactions_float_quantity": _case(
            exp("transactions.parquet", 3, "quantity", "2.5", "bad_type", {"transactions": 1}),
            lambda ts: ts.update(transactions=_set(
                ts["transactions"].with_columns(pl.col("quantity").cast(pl.Float64)),
                "quantity", 3, 2.5))),
        "transactions_zero_quantity": _case(
            exp("transactions.parquet", 5, "quantity", "0", "non_positive_quantity",
                {"transactions": 1}),
            both(mut("transactions", "quantity", 5, 0), mut("transactions", "amount", 5, 0.0))),
        "transactions_negative_price": _case(
            exp("transactions.parquet", 7, "unit_price", "-12.5", "negative_price",
                {"transactions": 1}),
            both(mut("transactions", "unit_price", 7, -12.5),
                 mut("transactions", "amount", 7, -12.5 * q))),
        "transactions_nan_amount": _case(
            exp("transactions.parquet", 13, "amount", "NaN", "not_finite", {"transactions": 1}),
            mut("transactions", "amount", 13, float("nan"))),
        "transactions_amount_mismatch": _case(
            exp("transactions.parquet", 12, "amount", str(amount12), "amount_mismatch",
                {"transactions": 1}),
            mut("transactions", "amount", 12, amount12)),
        "transactions_unknown_category": _case(
            exp("transactions.parquet", 4, "category", "toys", "unknown_category",
                {"transactions": 1}),
            mut("transactions", "category", 4, "toys", as_string=True)),
        "transactions_unknown_tier": _case(
            exp("transactions.parquet", 6, "tier", "luxury", "unknown_tier", {"transactions": 1}),
            mut("transactions", "tier", 6, "luxury", as_string=True)),
        "transactions_unknown_channel": _case(
            exp("transactions.parquet", 8, "channel", "phone", "unknown_channel",
                {"transactions": 1}),
            mut("transactions", "channel", 8, "phone", as_string=True)),
        "transactions_unknown_customer": _case(
            exp("transactions.parquet", 9, "customer_id", "ghost", "unknown_customer",
                {"transactions": 1}),
            mut("transactions", "customer_id", 9, "ghost")),
        "transactions_out_of_period": _case(
            exp("transactions.parquet", 10, "timestamp", "2024-12-31 12:00:00.000000",
                "out_of_period", {"transactions": 1}),
            mut("transactions", "timestamp", 10, datetime(2024, 12, 31, 12))),
        "transactions_duplicate_id": _case(
            exp("transactions.parquet", 11, "transaction_id", str(t["transaction_id"][10]),
                "duplicate_id", {"transactions": 1}),
            mut("transactions", "transaction_id", 11, t["transaction_id"][10])),
        "campaigns_end_before_start": _case(
            exp("campaigns.parquet", 1, "end", "2025-08-31", "campaign_end_before_start",
                {"campaigns": 1, "exposures": 3}),
            mut("campaigns", "end", 1, date(2025, 8, 31))),
        "exposures_unknown_arm": _case(
            exp("exposures.parquet", 2, "arm", "placebo", "unknown_arm", {"exposures": 1}),
            mut("exposures", "arm", 2, "placebo", as_string=True)),
        "exposures_unknown_campaign": _case(
            exp("exposures.parquet", 1, "campaign_id", "cmp_999", "unknown_campaign",
                {"exposures": 1}),
            mut("exposures", "campaign_id", 1, "cmp_999")),
        "exposures_duplicate_pair": _case(
            exp("exposures.parquet", 3, "campaign_id,customer_id", "cmp_001,c0003",
                "duplicate_id", {"exposures": 1}),
            mut("exposures", "customer_id", 3, "c0003")),
        "exposures_negative_spend": _case(
            exp("exposures.parquet", 0, "spend", "-1.0", "negative_value", {"exposures": 1}),
            mut("exposures", "spend", 0, -1.0)),
    }


# Broken metadata or files: (expected, how to break the written folder).
FILE_CASES: dict[str, tuple[dict[str, object], Callable[[Path], None]]] = {
    "merchant_json_period_reversed": (
        {"file": "merchant.json", "rule": "bad_merchant_json", "column": "period_end",
         "value": "2024-12-31", "fatal": True},
        lambda d: _patch_json(d, period_end="2024-12-31")),
    "merchant_json_unknown_type": (
        {"file": "merchant.json", "rule": "bad_merchant_json", "column": "merchant_type",
         "value": "bookshop", "fatal": True},
        lambda d: _patch_json(d, merchant_type="bookshop")),
    "merchant_json_not_json": (
        {"file": "merchant.json", "rule": "bad_merchant_json", "column": None,
         "value": None, "fatal": True},
        lambda d: (d / "merchant.json").write_text("{merchant_id: grocery_test", "utf-8")),
    "missing_exposures_file": (
        {"file": "exposures.parquet", "rule": "missing_file", "column": None, "value": None,
         "fatal": True},
        lambda d: (d / "exposures.parquet").unlink()),
    "unreadable_transactions_file": (
        {"file": "transactions.parquet", "rule": "unreadable_file", "column": None,
         "value": None, "fatal": True},
        lambda d: (d / "transactions.parquet").write_bytes(b"not a parquet file\n")),
}


def _patch_json(folder: Path, **changes: object) -> None:
    path = folder / "merchant.json"
    data = json.loads(path.read_text("utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")


def main() -> None:
    good = build_good()
    shutil.rmtree(GOOD, ignore_errors=True)
    write_merchant(GOOD, good)
    shutil.rmtree(BAD, ignore_errors=True)
    for name, (expected, mutate) in cases(good).items():
        tables = dict(good.tables)
        mutate(tables)
        folder = BAD / name
        folder.mkdir(parents=True)
        shutil.copy(GOOD / "merchant.json", folder / "merchant.json")
        for table, frame in tables.items():
            frame.write_parquet(folder / f"{table}.parquet")
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", "utf-8")
    for name, (expected, breaker) in FILE_CASES.items():
        folder = BAD / name
        shutil.copytree(GOOD, folder)
        breaker(folder)
        (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
