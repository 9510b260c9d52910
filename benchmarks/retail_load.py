"""Validated loading at scale: strict load of a clean merchant folder, and lenient load with
0.1 % broken rows, for 1M / 10M / 50M transactions.

Run: ``.venv/bin/python benchmarks/retail_load.py [--rows 1000000 10000000 50000000]``.
Each size runs in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import peak_rss_mb, write_result

from retail.load import load_merchant
from retail.merchant import MerchantInfo, empty_table, write_merchant_info
from retail.schema import MERCHANT_TYPES, customers_schema, transactions_schema

INFO = MerchantInfo(merchant_id="bench", name="Bench", merchant_type="grocery",
                    regions=("Stockholm", "Göteborg", "Malmö"), currency="SEK",
                    period_start=date(2025, 1, 1), period_end=date(2025, 12, 31))


def _write_folder(folder: Path, rows: int, broken: float) -> None:
    rng = np.random.default_rng(1)
    n_c = max(rows // 100, 10)
    ids = pl.int_range(0, n_c, eager=True).cast(pl.String).str.zfill(8)
    pl.DataFrame({
        "customer_id": ids, "region": rng.choice(list(INFO.regions), n_c),
        "signup_date": np.full(n_c, np.datetime64("2024-06-01")),
        "consent_analytics": rng.random(n_c) < 0.8, "consent_partner": rng.random(n_c) < 0.4,
    }).cast(customers_schema("grocery")).write_parquet(folder / "customers.parquet")  # type: ignore[arg-type]
    q = rng.integers(1, 5, rows).astype(np.int32)
    price = np.round(rng.uniform(5, 120, rows), 2)
    amount = np.round(q * price, 2)
    amount[rng.random(rows) < broken] += 7.0  # amount_mismatch rows for the lenient run
    cats = MERCHANT_TYPES["grocery"].categories
    start = np.datetime64("2025-01-01T00:00:00", "us")
    pl.DataFrame({
        "transaction_id": np.arange(rows, dtype=np.int64),
        "customer_id": ids.gather(rng.integers(0, n_c, rows)),
        "timestamp": start + rng.integers(0, 364 * 86_400, rows).astype("timedelta64[s]"),
        "store_id": rng.integers(1, 50, rows).astype(np.int32), "channel": "store",
        "category": np.array(cats)[rng.integers(0, len(cats), rows)], "tier": "standard",
        "organic": rng.random(rows) < 0.2, "quantity": q, "unit_price": price,
        "amount": amount, "promo": rng.random(rows) < 0.05,
    }).cast(transactions_schema("grocery")).write_parquet(  # type: ignore[arg-type]
        folder / "transactions.parquet")
    for table in ("campaigns", "exposures"):
        empty_table(table, "grocery").write_parquet(folder / f"{table}.parquet")
    write_merchant_info(folder, INFO)


def load_once(folder: Path, mode: str, rows: int) -> dict[str, object]:
    t0 = time.perf_counter()
    m = load_merchant(folder, lenient=mode == "lenient", quarantine_dir=folder.parent / "q",
                      now=datetime(2026, 1, 1))
    seconds = time.perf_counter() - t0
    t = m.report.tables["transactions"]
    assert t.loaded_rows + t.quarantined_rows == rows
    return {"mode": mode, "transactions": rows, "customers": m.customers.height,
            "load_s": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "quarantined": t.quarantined_rows, "peak_rss_mb": round(peak_rss_mb(), 0)}


def _self(*args: str) -> str:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000,
                                                                 50_000_000])
    parser.add_argument("--make", nargs=3, metavar=("ROWS", "BROKEN", "DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=3, metavar=("DIR", "MODE", "ROWS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        _write_folder(Path(args.make[2]), int(args.make[0]), float(args.make[1]))
        return
    if args.load:
        print(json.dumps(load_once(Path(args.load[0]), args.load[1], int(args.load[2]))))
        return
    results = []
    for rows in args.rows:
        for mode, broken in (("strict", "0"), ("lenient", "0.001")):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "m"
                folder.mkdir()
                _self("--make", str(rows), broken, str(folder))  # generation is not measured
                results.append(json.loads(_self("--load", str(folder), mode, str(rows))))
                print(results[-1], flush=True)
    write_result("retail_load", results, title="Validated merchant loading (retail.load)",
                 targets={"good path": "no per-row Python loop; 50M transactions load"},
                 notes="Read Parquet + validate + build the Merchant, in a fresh process "
                       "(peak RSS is the load's own). Strict: clean folder. Lenient: 0.1 % of "
                       "transactions carry an amount_mismatch and are quarantined to Parquet. "
                       "Machine shared with other jobs (load average 6-9 on 2 cores) while "
                       "measured.")


if __name__ == "__main__":
    main()
