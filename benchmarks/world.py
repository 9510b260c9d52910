"""World generator benchmark: wall time, CPU time and peak RSS per scale.

Each scale runs in its own subprocess (a fresh interpreter), which reports its own peak RSS,
so scales do not share memory figures. Usage::

    python benchmarks/world.py [--scales medium,large] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result

_CHILD = """
import json, resource, sys, time
from retail.world import generate_world
t0, c0 = time.perf_counter(), time.process_time()
summaries = generate_world(sys.argv[1], scale=sys.argv[2], seed=int(sys.argv[3]))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
g1 = next(s for s in summaries if s.merchant_id == "grocery_1")
print(json.dumps({"seconds": wall, "cpu_seconds": cpu,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "grocery_1_customers": g1.customers, "grocery_1_rows": g1.transactions,
                  "all_rows": sum(s.transactions for s in summaries)}))
"""

TARGETS = {"medium": (60.0, None), "large": (300.0, 8192.0)}


def run_scale(scale: str, seed: int, out: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), scale, str(seed)],
                          check=True, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    limit_s, limit_mb = TARGETS.get(scale, (None, None))
    ok = (limit_s is None or row["seconds"] <= limit_s) and (
        limit_mb is None or row["peak_rss_mb"] <= limit_mb)
    return {"scale": scale, **{k: round(v, 1) if isinstance(v, float) else v
                               for k, v in row.items()}, "within_target": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="medium,large")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, default=None, help="write worlds here (kept)")
    args = ap.parse_args()
    rows = []
    for scale in args.scales.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = (args.keep or Path(tmp)) / f"world_{scale}"
            rows.append(run_scale(scale, args.seed, out))
            print(json.dumps(rows[-1]))
    write_result("world", rows, title="World generator",
                 targets={"medium": "≤ 60 s", "large": "≤ 5 min, ≤ 8 GB peak RSS"},
                 notes="One subprocess per scale; seconds are wall-clock on a 2-core machine "
                       "shared with other jobs (cpu_seconds is this process's CPU time).")


if __name__ == "__main__":
    main()
