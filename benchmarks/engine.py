"""Simulation engine speed: vectorised vs the reference per-agent Mesa engine, in one run.

Scenario: synthetic grocery twins, a 20% meat discount targeted at ``meat=yes`` for 30 days.
The vectorised engine runs treatment and control on ``--twins`` twins for ``--days`` days (one
replication of an experiment); the reference engine runs the treatment arm on a subset of
``--ref-twins`` twins, for the same days, in the same process. ``speedup`` compares
agent-days per second.

Run: ``.venv/bin/python benchmarks/engine.py [--twins 1000000] [--days 90] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import peak_rss_mb, write_result

from retail.offers import Offer, parse_filter
from simulation.effects import OfferEffect, build_effect
from simulation.model import MarketModel
from simulation.params import TwinParams

OFFER = Offer(name="Quality meat", kind="discount", pct=20, categories=("meat",), days=30,
              target=(parse_filter("meat=yes"),))


def _timed_run(p: TwinParams, effect: OfferEffect, engine: str, days: int,
               seed: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads)."""
    t0, c0 = time.perf_counter(), time.process_time()
    MarketModel(p, effect=effect, engine=engine, seed=seed, agent_limit=0).run(days)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(twins: int, days: int, ref_twins: int, seed: int = 0) -> dict[str, Any]:
    t0 = time.perf_counter()
    params = TwinParams.synthetic(twins, "grocery", seed=seed)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    effect = build_effect(OFFER, params)
    effect_s = time.perf_counter() - t1
    load = os.getloadavg()[0]
    treat_s, treat_cpu = _timed_run(params, effect, "vectorised", days, seed)
    control_s, control_cpu = _timed_run(params, effect.as_control(), "vectorised", days, seed)
    sub = params.subset(slice(0, min(ref_twins, twins)))
    sub_effect = build_effect(OFFER, sub)
    ref_s, ref_cpu = _timed_run(sub, sub_effect, "reference", days, seed)
    vec_sub_s, _ = _timed_run(sub, sub_effect, "vectorised", days, seed)
    vec_rate = 2 * twins * days / (treat_s + control_s)
    ref_rate = sub.n * days / ref_s
    return {
        "twins": twins, "days": days, "ref_twins": sub.n,
        "load_avg_1m_at_start": round(load, 1),
        "build_params_s": round(build_s, 2), "build_effect_s": round(effect_s, 2),
        "treatment_s": round(treat_s, 2), "control_s": round(control_s, 2),
        "treatment_plus_control_s": round(treat_s + control_s, 2),
        "agent_days_per_s_vectorised": round(vec_rate),
        "agent_days_per_s_vectorised_subset": round(sub.n * days / vec_sub_s),
        "agent_days_per_s_reference": round(ref_rate),
        "speedup": round(vec_rate / ref_rate, 1),
        "treatment_plus_control_cpu_s": round(treat_cpu + control_cpu, 2),
        "agent_days_per_cpu_s_vectorised": round(2 * twins * days / (treat_cpu + control_cpu)),
        "agent_days_per_cpu_s_reference": round(sub.n * days / ref_cpu),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twins", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--ref-twins", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the result row as JSON")
    args = ap.parse_args()
    row = measure(args.twins, args.days, args.ref_twins, args.seed)
    write_result("engine", [row], title="Simulation engine speed (vectorised vs reference)",
                 targets={"agent_days_per_s_vectorised": ">= 10M", "speedup": ">= 100x",
                          "treatment_plus_control_s": "<= 60 s at 1M twins x 90 days",
                          "peak_rss_mb": "<= 4096"},
                 notes="Treatment + control = one experiment replication (common random "
                       "numbers). Reference: per-agent Mesa engine (`shuffle_do('step')`) on "
                       "the first `ref_twins` twins, same days, same process. Parameter and "
                       "effect building are timed separately. The machine is shared: wall "
                       "rates fall with the load average; per-CPU-second rates do not.")
    print(json.dumps(row, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
