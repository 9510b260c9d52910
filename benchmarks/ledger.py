"""Ledger throughput: charges per second with one writer and with 8 concurrent writers.

Every charge is a full ``BEGIN IMMEDIATE`` transaction that re-reads the period's charges,
recomposes them with the accountant, checks the cap and appends a hash-chained entry with
``synchronous=FULL``. Also times ``verify`` on the resulting ledger.

Run: ``.venv/bin/python benchmarks/ledger.py [--charges 400] [--writers 8]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import peak_rss_mb, write_result

from privacy.accounting import DpEvent
from privacy.audit import verify_ledger
from privacy.budget import PrivacyBudget

EVENT = DpEvent(kind="gaussian", rho=1e-9)  # tiny: the cap is never the limit here


def _owner(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "merchant.json").write_text(json.dumps({"merchant_id": name,
                                                      "merchant_type": "grocery"}))
    PrivacyBudget.init_owner(folder, period="bench", cap_epsilon=10.0)
    return folder


def _charge_n(owner: str, n: int) -> None:
    budget = PrivacyBudget.for_owner(owner)
    for i in range(n):
        budget.charge(EVENT, requester="bench", purpose=f"charge {i}", mechanism="gaussian",
                      parameters={}, sensitivity="L2: 1")


def _single(root: Path, n: int) -> dict[str, Any]:
    owner = _owner(root, "single")
    t0 = time.perf_counter()
    _charge_n(str(owner), n)
    secs = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = verify_ledger(owner / "ledger.sqlite")
    return {"case": "1 writer", "charges": n, "seconds": round(secs, 2),
            "charges_per_s": n / secs, "verify_s": round(time.perf_counter() - t1, 2),
            "verify_ok": report.ok}


def _concurrent(root: Path, n: int, writers: int) -> dict[str, Any]:
    owner = _owner(root, "concurrent")
    ctx = mp.get_context("fork")
    per = n // writers
    procs = [ctx.Process(target=_charge_n, args=(str(owner), per)) for _ in range(writers)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    secs = time.perf_counter() - t0
    report = verify_ledger(owner / "ledger.sqlite")
    charges = sum(1 for e in PrivacyBudget.for_owner(owner).ledger.entries()
                  if e.kind == "charge")
    return {"case": f"{writers} writer processes", "charges": charges,
            "seconds": round(secs, 2), "charges_per_s": charges / secs,
            "verify_ok": report.ok and charges == per * writers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--charges", type=int, default=400)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [_single(Path(tmp), args.charges),
                _concurrent(Path(tmp), args.charges, args.writers)]
    for row in rows:
        row["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(row)
    write_result("ledger", rows, title="Privacy ledger throughput",
                 targets={"charges": "a release or DP-SGD round is one charge; "
                                     "tens per second are ample"},
                 notes="Each charge recomposes every charge of the period with the accountant "
                       "inside one BEGIN IMMEDIATE transaction (SQLite WAL, synchronous=FULL), "
                       "so the rate falls slowly as a period's ledger grows.")


if __name__ == "__main__":
    main()
