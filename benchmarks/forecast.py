"""Forecast benchmark: the twins' 90-day business-as-usual revenue vs nature's.

For each owner, twins (as many as its consenting customers) are synthesised from its release
at ε (scratch ledger) and simulated without an offer for 90 days after the observed period;
nature's no-offer outcome (``retail.world.forecast_truth``) for the same consenting customers
is the truth. Target: revenue within ±10 %. Each finite ε is released ``--repeats`` times
(independent DP draws). Usage::

    python benchmarks/forecast.py [--world data/bench/medium] [--epsilons 1,inf] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

MERCHANTS = ("grocery_1", "grocery_2", "apparel_1", "cafe_1", "pet_1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", type=Path, default=ROOT / "data" / "bench" / "medium")
    ap.add_argument("--epsilons", default="1,inf")
    ap.add_argument("--merchants", default=",".join(MERCHANTS))
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3,
                    help="independent DP releases per finite ε (OpenDP noise is not seeded)")
    args = ap.parse_args()
    from validity import ensure_world

    from retail.world import forecast_truth
    from simulation import forecast, params_from_twins
    from twins.hub import twins_from_releases
    from twinsim.evaluation import owner_release

    world = ensure_world(args.world)
    rows: list[dict[str, object]] = []
    runs = [(float(e), r) for e in args.epsilons.split(",")
            for r in range(args.repeats if math.isfinite(float(e)) else 1)]
    for eps, rep in runs:
        for mid in args.merchants.split(","):
            t0 = time.perf_counter()
            release, ft = owner_release(world, mid, epsilon=eps)
            twins = twins_from_releases([release], n=ft.height, seed=0)
            fc = forecast(params_from_twins(twins, release.merchant_type, seed=0),
                          days=args.days, replications=args.replications, seed=0)
            truth = forecast_truth(world, mid, customer_ids=ft["customer_id"], days=args.days)
            true_rev, true_tx = float(truth["spend"].sum()), float(truth["visits"].sum())
            err = fc.revenue.mean / true_rev - 1
            label = "inf (non-private)" if math.isinf(eps) else f"{eps:g}" + (
                f" (release {rep + 1}/{args.repeats})" if args.repeats > 1 else "")
            rows.append({"epsilon": label,
                         "merchant": mid, "customers": ft.height,
                         "true_revenue": round(true_rev), "pred_revenue": round(fc.revenue.mean),
                         "pred_low": round(fc.revenue.low), "pred_high": round(fc.revenue.high),
                         "revenue_error": round(err, 4), "within_10pct": abs(err) <= 0.10,
                         "true_transactions": round(true_tx),
                         "pred_transactions": round(fc.transactions.mean),
                         "transactions_error": round(fc.transactions.mean / true_tx - 1, 4),
                         "seconds": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    write_result("forecast", rows, title="Forecast: twins' 90-day no-offer revenue vs nature "
                 "(medium world)", targets={"revenue_error": "within ±10 %"},
                 notes="Consenting customers only on both sides; twins from the owner's release "
                       "(scratch ledger); transaction = a customer's purchase day.")


if __name__ == "__main__":
    main()
