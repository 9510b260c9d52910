"""Federated response model on the medium world: speed, value of federation, privacy cost.

1. Speed: 5 owners × 10 rounds of DP-SGD in the embedded federation (target ≤ 3 min, CPU).
2. Value: for the small merchants (deli_1, cafe_1), the uplift ranking quality of
   * the federated DP model (5 owners, ε per owner),
   * a DP model trained by the small merchant alone (same ε, rounds, settings),
   * a non-private model on the pooled training data of all 5 owners (upper bound),
   judged on the small merchant's held-out customers two ways: Qini on their randomised
   campaign logs, and AUUC against nature's per-customer truth (``retail.world.counterfactual``
   with and without each of the merchant's past offers).
3. Privacy cost per owner: ε charged (ledger RDP), PLD and Opacus cross-checks.

Usage: ``python benchmarks/federation.py [--world DIR] [--rounds 10] [--epsilon 1.0]``
(without ``--world`` a medium world is generated once into benchmarks/.cache/).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# This script shares its name with the `federation` package: drop the script's own folder from
# sys.path (else `import federation` finds this file), put the repo root first, and load
# _common by path (a site-packages module named "benchmarks" shadows this folder).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
os.environ.setdefault("POLARS_MAX_THREADS", "2")
_spec = importlib.util.spec_from_file_location("_bench_common", _HERE / "_common.py")
assert _spec is not None and _spec.loader is not None
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
peak_rss_mb, write_result = _common.peak_rss_mb, _common.write_result
from federation.data import OwnerData  # noqa: E402
from federation.encoding import scale_spend  # noqa: E402
from federation.evaluation import qini_coefficient, uplift_auc_truth  # noqa: E402
from federation.inprocess import InProcessFederation  # noqa: E402
from federation.model import build_model, predict, set_weights  # noqa: E402
from federation.settings import RoundSettings  # noqa: E402
from federation.training import Examples, fit_nonprivate  # noqa: E402
from retail.offers import Offer  # noqa: E402
from retail.world.counterfactual import counterfactual  # noqa: E402

OWNERS = ("grocery_1", "grocery_2", "deli_1", "pet_1", "cafe_1")
SMALL = ("deli_1", "cafe_1")
CACHE = Path(__file__).resolve().parent / ".cache" / "world_medium"


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _world(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if not (CACHE / "world.json").is_file():
        from retail.world.generate import generate_world

        generate_world(CACHE, scale="medium", seed=7)
    return CACHE


def _copy(world: Path, names: tuple[str, ...], dst: Path) -> Path:
    """Merchant folders (not the truth) into a scratch world: fresh ledgers per experiment."""
    dst.mkdir(parents=True)
    meta = json.loads((world / "world.json").read_text(encoding="utf-8"))
    (dst / "world.json").write_text(json.dumps({**meta, "merchants": list(names)}),
                                    encoding="utf-8")
    for n in names:
        shutil.copytree(world / n, dst / n, ignore=shutil.ignore_patterns("ledger.sqlite*"))
    return dst


def _truth(world: Path, name: str, data: OwnerData) -> list[tuple[Offer, np.ndarray]]:
    """Per offer of the merchant: true per-customer uplift (scaled spend) of held-out customers."""
    from retail.load import load_merchant

    m = load_merchant(world / name)
    ids = data.holdout_codes["customer_id"]
    out = []
    for text in m.campaigns["offer"]:
        offer = Offer.from_json(text, merchant_type=m.info.merchant_type)
        cf = counterfactual(world, name, Offer.from_dict({**offer.to_dict(), "start_day": 0}),
                            customer_ids=ids, days=offer.days)
        t = cf.treated.sort("customer_id")["spend"].to_numpy()
        b = cf.baseline.sort("customer_id")["spend"].to_numpy()
        mt = m.info.merchant_type
        out.append((offer, scale_spend(t, mt) - scale_spend(b, mt)))
    return out


def _quality(weights: dict[str, np.ndarray], settings: RoundSettings, data: OwnerData,
             truth: list[tuple[Offer, np.ndarray]]) -> dict[str, float]:
    model = build_model(settings.model)
    set_weights(model, weights)
    pool = data.holdout
    qini = qini_coefficient(predict(model, pool.x).lift, pool.treated.astype(bool), pool.spend)
    # normalised by the perfect ranking's AUUC: 1 = oracle, 0 = random, < 0 = worse than random
    auuc, auuc_p = [], []
    for o, u in truth:
        pred = predict(model, data.holdout_design(o))
        best = max(uplift_auc_truth(u, u), 1e-12)
        auuc.append(uplift_auc_truth(pred.lift, u) / best)
        auuc_p.append(uplift_auc_truth(pred.p_redeem, u) / best)
    return {"qini_logs": qini, "auuc_truth": float(np.mean(auuc)),
            "auuc_truth_p": float(np.mean(auuc_p))}


def _pooled(fed: InProcessFederation) -> Examples:
    pools = [o._data.train for o in fed.owners.values()]
    return Examples(x=np.concatenate([p.x for p in pools]),
                    treated=np.concatenate([p.treated for p in pools]),
                    redeemed=np.concatenate([p.redeemed for p in pools]),
                    spend=np.concatenate([p.spend for p in pools]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--epsilon", type=float, default=1.0)
    args = ap.parse_args()
    world = _world(args.world)
    settings = RoundSettings(rounds=args.rounds, target_epsilon=args.epsilon,
                             expected_batch=256, steps_per_round=8, learning_rate=0.5)
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp:
        fed = InProcessFederation.from_world(_copy(world, OWNERS, Path(tmp) / "fed"), seed=1)
        t0 = time.perf_counter()
        for o in fed.owners.values():
            _ = o._data  # load + encode each owner's logs (owner-side, once)
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = fed.train(settings)
        t_train = time.perf_counter() - t0
        report = {r.merchant: r for r in fed.report(result)}
        _say(f"federated: {t_train:.1f} s; fitting the pooled non-private model")
        pooled = fit_nonprivate(_pooled(fed), settings, epochs=8, batch=1024)
        for name in SMALL:
            data = fed.owners[name]._data
            _say(f"{name}: truth and own-data-only model")
            truth = _truth(world, name, data)
            alone = InProcessFederation.from_world(_copy(world, (name,), Path(tmp) / name),
                                                   seed=2)
            alone_res = alone.train(settings)
            for label, w in (("federated (DP)", result.weights),
                             ("own data only (DP)", alone_res.weights),
                             ("pooled, non-private (upper bound)", pooled)):
                q = _quality(w, settings, data, truth)
                rows.append({"merchant": name, "model": label,
                             "customers (train)": data.train.n_customers,
                             "qini (held-out logs)": q["qini_logs"],
                             "AUUC vs truth (lift)": q["auuc_truth"],
                             "AUUC vs truth (p redeem)": q["auuc_truth_p"]})
        for name, r in report.items():
            rows.append({"merchant": name, "model": "privacy cost of the federated run",
                         "rounds taken": r.rounds_taken, "ε charged (RDP)": r.epsilon_charged,
                         "ε PLD": r.epsilon_pld, "ε Opacus": r.epsilon_opacus})
    rows.append({"merchant": f"{len(OWNERS)} owners", "model": "speed",
                 "rounds taken": settings.rounds, "load s": round(t_load, 1),
                 "train s": round(t_train, 1), "peak RSS MB": round(peak_rss_mb())})
    write_result("federation", rows, title="Federated DP-SGD response model (medium world)",
                 targets={"5 owners × 10 rounds": "≤ 180 s train on CPU",
                          "small merchants": "federated beats own-data-only"},
                 notes=(f"ε = {args.epsilon} per owner over {settings.rounds} rounds at δ = 1e-8 "
                        f"(Poisson q = 256/n, {settings.steps_per_round} steps per round, clip "
                        f"{settings.max_grad_norm}). Qini and AUUC are mean heights above "
                        "random ranking of the incremental scaled spend (0 = random); AUUC "
                        "vs truth is divided by the oracle ranking's (1 = perfect), ranking "
                        "customers by the model's spend lift or by its redemption probability."))
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
