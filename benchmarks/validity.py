"""Validity benchmark: predicted vs nature's true incremental profit over the offer suite.

Runs the whole pipeline (release at ε → twins → calibration → simulation; truth from
``retail.world.counterfactual`` for the same targeted customers) on the MEDIUM world
(``data/bench/medium``, generated once with seed 7 and reused) at ε = 1 and ε = ∞ (the
non-private mode, which isolates model error). Each finite ε is released ``--repeats`` times
(OpenDP's noise is not seeded, so each release is an independent draw and one run says little
on its own). Ledgers are scratch copies: no real budget is spent. Usage::

    python benchmarks/validity.py [--world data/bench/medium] [--epsilons 1,inf]
                                  [--replications 20] [--repeats 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, write_result

TARGETS = {"median_rel_error": "<= 0.20", "ci_coverage": ">= 0.80", "spearman": ">= 0.8"}


def ensure_world(path: Path, scale: str = "medium") -> Path:
    if not (path / "_truth" / "truth.json").is_file():
        from retail.world import generate_world

        print(f"generating the {scale} world in {path} (once) ...", flush=True)
        generate_world(path, scale=scale, seed=7)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--world", type=Path, default=ROOT / "data" / "bench" / "medium")
    ap.add_argument("--suite", type=Path, default=ROOT / "offers" / "suite.json")
    ap.add_argument("--epsilons", default="1,inf")
    ap.add_argument("--replications", type=int, default=20,
                    help="prediction rounds per offer (the point estimate is their mean)")
    ap.add_argument("--name", default="validity")
    ap.add_argument("--repeats", type=int, default=4,
                    help="independent DP releases per finite ε (OpenDP noise is not seeded, "
                         "so each release is a fresh draw)")
    args = ap.parse_args()
    from twinsim.evaluation import evaluate_suite, load_suite

    world = ensure_world(args.world)
    suite = load_suite(args.suite)
    rows: list[dict[str, object]] = []
    summaries = []
    runs = [(float(e), r) for e in args.epsilons.split(",")
            for r in range(args.repeats if math.isfinite(float(e)) else 1)]
    for eps, rep_i in runs:
        t0 = time.perf_counter()
        rep = evaluate_suite(world, suite, epsilon=eps, replications=args.replications,
                             on_done=lambda r: print(
                                 f"  ε={r.epsilon:g} {r.offer[:48]:48s} true {r.true_profit:12,.0f}"
                                 f"  pred {r.pred_profit:12,.0f} [{r.pred_low:,.0f}, "
                                 f"{r.pred_high:,.0f}]", flush=True))
        label = ("inf (non-private)" if math.isinf(eps) else
                 f"{eps:g}" + (f" (release {rep_i + 1}/{args.repeats})" if args.repeats > 1
                               else ""))
        for r in rep.rows:
            rows.append({"epsilon": label, "merchant": r.merchant_id, "offer": r.offer,
                         "targeted": r.targeted_real, "true_profit": round(r.true_profit),
                         "pred_profit": round(r.pred_profit), "pred_low": round(r.pred_low),
                         "pred_high": round(r.pred_high), "covered": r.covered,
                         "rel_error": round(r.rel_error, 3),
                         "true_baseline_margin": round(r.true_baseline_margin),
                         "pred_baseline_margin": round(r.pred_baseline_margin),
                         "true_cost": round(r.true_cost), "pred_cost": round(r.pred_cost),
                         "true_redemption": round(r.true_redemption_rate, 4),
                         "pred_redemption": round(r.pred_redemption_rate, 4)})
        s = {k: round(v, 3) for k, v in rep.summary.items()}
        summaries.append(f"ε={label}: {s}, {time.perf_counter() - t0:.0f} s")
        rows.append({"epsilon": label, "offer": "SUMMARY", **s,
                     "seconds": round(time.perf_counter() - t0)})
        print(summaries[-1], flush=True)
    write_result(args.name, rows, title="Validity: twins' predicted vs nature's true uplift "
                 "(medium world)", targets=TARGETS,
                 notes="Profit = incremental gross margin + partner/fee income over 90 days; "
                       "predicted = mean per targeted twin × real targeted customers; interval "
                       f"= 95% prediction interval over {args.replications} synthesis+"
                       "simulation rounds (response and prior draws included; the release's own "
                       "DP noise is not: each ε=1 row is one release). "
                       + " | ".join(summaries))


if __name__ == "__main__":
    main()
