"""App benchmark: how long an Offer Lab trial takes to answer.

Target (DESIGN): an offer trial on 50k twins × 90 days answers in ≤ 3 s. Measured two ways on
the demo-persona population (so no release is needed):

- ``facade``: :func:`app_pages.trials.run_trial` cold (twins + behaviour parameters +
  treatment/control replications) and warm (the cached answer to the same question);
- ``page``: the Offer Lab page in ``AppTest``, from the "Run trial" click to the rendered KPI
  cards, chart and tables, for the first offer (twins drawn, behaviour parameters built) and
  for the next offer on the same population (the usual case while a merchant tunes an offer).
  The first page load, which imports the packages, is excluded.

Usage: ``python benchmarks/app.py [--twins 50000] [--days 90] [--replications 3]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

# A site-packages module named "benchmarks" shadows this folder, so import _common directly.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _common import peak_rss_mb, write_result

ROOT = Path(__file__).resolve().parent.parent


def _world(root: Path) -> Path:
    from retail.merchant import MerchantInfo, WorldInfo, write_merchant_info, write_world_info

    write_merchant_info(root / "grocery_1", MerchantInfo(
        merchant_id="grocery_1", name="Bench Grocery", merchant_type="grocery",
        regions=("Stockholm",), currency="SEK", period_start=date(2025, 1, 1),
        period_end=date(2025, 12, 31)))
    write_world_info(root, WorldInfo(kind="synthetic", merchants=("grocery_1",)))
    return root


def bench_facade(world: Path, twins: int, days: int, reps: int) -> dict[str, object]:
    from app_pages import trials

    pop = trials.Population(source="demo", merchant=str(world / "grocery_1"),
                            world=str(world), n_twins=twins)
    offer = trials.build_offer("discount", {"pct": 20.0, "categories": ["meat"]},
                               name="Bench", days=30, start_day=0, merchant_type="grocery")
    t0 = time.perf_counter()
    result = trials.run_trial(pop, offer, days=days, replications=reps, seed=7,
                              segments="tier")
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    trials.run_trial(pop, offer, days=days, replications=reps, seed=7, segments="tier")
    warm = time.perf_counter() - t0
    return {"route": "facade (run_trial)", "twins": twins, "days": days,
            "replications": reps, "cold_s": round(cold, 2), "warm_s": round(warm, 4),
            "agent_days_per_s": round(2 * reps * twins * days / cold),
            "roi": round(result.overall["roi"].mean, 3)}


def bench_page(world: Path, twins: int, days: int, reps: int) -> list[dict[str, object]]:
    from streamlit.testing.v1 import AppTest

    os.environ["TWINSIM_WORLD"] = str(world)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.switch_page("app_pages/offer_lab.py").run()
    at.radio(key="lab_source").set_value("demo").run()
    at.number_input(key="lab_n").set_value(twins)
    at.number_input(key="lab_h").set_value(days)
    at.number_input(key="lab_reps").set_value(reps).run()
    rows = []
    for label, pct in (("first offer (twins drawn)", 20), ("next offer, same twins", 25)):
        at.number_input(key="lab_discount_pct").set_value(pct).run()
        t0 = time.perf_counter()
        at.button(key="lab_run").click().run()
        took = time.perf_counter() - t0
        if at.exception or at.error or not at.metric:
            raise RuntimeError(f"the page did not answer: {at.exception} {at.error}")
        rows.append({"route": f"page: {label}", "twins": twins, "days": days,
                     "replications": reps, "cold_s": round(took, 2)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--twins", type=int, default=50_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--replications", type=int, default=3)
    a = p.parse_args()
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        world = _world(Path(tmp))
        rows = [bench_facade(world, a.twins, a.days, a.replications),
                *bench_page(world, a.twins, a.days, a.replications)]
    for r in rows:
        print(r)
    write_result("app", rows, title="App: Offer Lab trial latency",
                 targets={"trial on 50k twins × 90 days": "≤ 3 s"},
                 notes=f"Demo-persona population; default replications {a.replications}; "
                       f"peak RSS {peak_rss_mb():.0f} MB. cold_s: time to answer an uncached "
                       "trial; warm_s: the same trial asked again (cached).")


if __name__ == "__main__":
    main()
