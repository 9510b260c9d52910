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
from typing import Any

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


def _offer_row(label: str, r: Any) -> dict[str, object]:
    return {"epsilon": label, "merchant": r.merchant_id, "offer": r.offer,
            "targeted": r.targeted_real, "true_profit": round(r.true_profit),
            "pred_profit": round(r.pred_profit), "pred_low": round(r.pred_low),
            "pred_high": round(r.pred_high), "covered": r.covered,
            "rel_error": round(r.rel_error, 3),
            "true_baseline_margin": round(r.true_baseline_margin),
            "pred_baseline_margin": round(r.pred_baseline_margin),
            "true_cost": round(r.true_cost), "pred_cost": round(r.pred_cost),
            "true_redemption": round(r.true_redemption_rate, 4),
            "pred_redemption": round(r.pred_redemption_rate, 4)}


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
    from twinsim.evaluation import evaluate_repeats, load_suite, pool_releases

    world = ensure_world(args.world)
    suite = load_suite(args.suite)
    rows: list[dict[str, object]] = []
    summaries = []

    def show(r: Any) -> None:
        print(f"  ε={r.epsilon:g} {r.offer[:48]:48s} true {r.true_profit:12,.0f}  pred "
              f"{r.pred_profit:12,.0f} [{r.pred_low:,.0f}, {r.pred_high:,.0f}]", flush=True)

    for eps in (float(e) for e in args.epsilons.split(",")):
        n = args.repeats if math.isfinite(eps) else 1
        t0 = time.perf_counter()
        reps = evaluate_repeats(world, suite, epsilon=eps, repeats=n,
                                replications=args.replications, on_done=show)
        seconds = (time.perf_counter() - t0) / n
        for i, rep in enumerate(reps):
            label = ("inf (non-private)" if math.isinf(eps) else
                     f"{eps:g}" + (f" (release {i + 1}/{n})" if n > 1 else ""))
            rows += [_offer_row(label, r) for r in rep.rows]
            s = {k: round(v, 3) for k, v in rep.summary.items()}
            summaries.append(f"ε={label}: {s}")
            rows.append({"epsilon": label, "offer": "SUMMARY", **s, "seconds": round(seconds)})
            print(summaries[-1], flush=True)
        if n > 1:
            pooled = pool_releases(reps)
            label = f"{eps:g} (all {n} releases)"
            rows += [{"epsilon": label, "merchant": o["merchant_id"], "offer": o["offer"],
                      "true_profit": round(o["true_profit"]),
                      "pred_profit": round(o["pred_mean"]),
                      "pred_sd_releases": round(o["pred_sd_releases"]),
                      "dp_sd": round(o["dp_sd"]),
                      "dp_sd_over_truth": round(o["dp_sd_over_truth"], 2),
                      "covered_share": round(o["covered_share"], 2),
                      "rel_error": round(o["median_rel_error"], 3)}
                     for o in pooled["offers"]]
            s = {k: round(v, 3) for k, v in pooled["summary"].items()}
            summaries.append(f"ε={label}: {s}")
            rows.append({"epsilon": label, "offer": "SUMMARY (pooled)", **s})
            print(summaries[-1], flush=True)
    write_result(args.name, rows, title="Validity: twins' predicted vs nature's true uplift "
                 "(medium world)", targets=TARGETS,
                 notes="Profit = incremental gross margin + partner/fee income over 90 days; "
                       "predicted = mean per targeted twin × real targeted customers; interval "
                       f"= 95% prediction interval over {args.replications} synthesis+"
                       "simulation rounds, each with a response drawn within its calibration "
                       "uncertainty (which includes the DP noise of the campaign tables) and "
                       "the unidentified priors drawn (in antithetic pairs: round 2k+1 "
                       "mirrors round 2k's response draw; twins and simulation fresh each "
                       "round); the DP noise of the marginals is not in it. Each ε=1 row "
                       "block is one release; 'all N releases' rows pool "
                       "them: pred_profit = mean over releases, pred_sd_releases = the spread "
                       "of the releases' predictions, dp_sd = that spread with the rounds' "
                       "Monte-Carlo error taken out (what a release's DP noise causes), "
                       "dp_sd_over_truth = dp_sd / |true|, "
                       "rel_error = median over releases; the pooled SUMMARY takes the median "
                       "and coverage over every (offer, release) pair and the mean Spearman. "
                       + " | ".join(summaries))


if __name__ == "__main__":
    main()
