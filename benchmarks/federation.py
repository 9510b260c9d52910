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
4. Every owner's held-out Qini and redemption AUC under the federated model (does a weighting
   that favours the small owners cost the large ones?).

Usage: ``python benchmarks/federation.py [--world DIR] [--rounds 10] [--epsilon 1.0]
[--seeds 5] [--weighting examples|sqrt|equal]``
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
from federation.inprocess import InProcessFederation, OwnerReport, owner_quality  # noqa: E402
from federation.model import build_model, predict, set_weights  # noqa: E402
from federation.settings import WEIGHTINGS, ModelConfig, RoundSettings  # noqa: E402
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


def _federation(world: Path, names: tuple[str, ...], dst: Path, seed: int,
                cache: dict[str, OwnerData]) -> InProcessFederation:
    """Owners over fresh scratch ledgers; logs loaded and encoded once per benchmark run."""
    fed = InProcessFederation.from_world(_copy(world, names, dst), seed=seed)
    for name, owner in fed.owners.items():
        if name in cache:  # same folder content, so the same OwnerData: skip re-encoding
            owner.__dict__["_data"] = cache[name]
        cache[name] = owner._data
    return fed


def _col(per_seed: list[dict[str, float]], key: str) -> np.ndarray:
    return np.array([q[key] for q in per_seed])


def _sd(a: np.ndarray) -> float | None:
    return float(np.std(a, ddof=1)) if len(a) > 1 else None


def _summary(name: str, label: str, per_seed: list[dict[str, float]],
             n_train: int) -> dict[str, object]:
    lift, p, qini = (_col(per_seed, k) for k in ("auuc_truth", "auuc_truth_p", "qini_logs"))
    return {"merchant": name, "model": label, "customers (train)": n_train,
            "seeds": len(per_seed), "qini (held-out logs)": float(np.mean(qini)),
            "± sd (qini)": _sd(qini), "qini per seed": " / ".join(f"{v:+.4f}" for v in qini),
            "AUUC vs truth (lift) mean": float(np.mean(lift)), "± sd": _sd(lift),
            "per seed": " / ".join(f"{v:+.2f}" for v in lift),
            "AUUC vs truth (p redeem) mean": float(np.mean(p)), "± sd (p)": _sd(p)}


def _wins(fed: list[dict[str, float]], own: list[dict[str, float]]) -> dict[str, object]:
    """Seeds (paired: same seed index) in which the federated model beats own-data-only."""
    def count(key: str) -> str:
        return f"{int(np.sum(_col(fed, key) > _col(own, key)))}/{len(fed)}"

    return {"beats own-only, seeds (qini)": count("qini_logs"),
            "beats own-only, seeds (AUUC lift)": count("auuc_truth")}


def _holdout_row(name: str, per_seed: list[dict[str, float]]) -> dict[str, object]:
    qini, auc = _col(per_seed, "qini"), _col(per_seed, "redeem_auc")
    return {"merchant": name, "model": "federated (DP), owner's held-out logs",
            "seeds": len(per_seed), "qini (held-out logs)": float(np.mean(qini)),
            "± sd (qini)": _sd(qini), "redeem AUC mean": float(np.mean(auc)),
            "± sd (AUC)": _sd(auc)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=5,
                    help="training seeds per model (sampling, DP noise, pooled fit order)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default=RoundSettings.weighting,
                    help="FedAvg weighting of owners (RoundSettings.weighting)")
    args = ap.parse_args()
    world = _world(args.world)
    settings = RoundSettings(rounds=args.rounds, target_epsilon=args.epsilon,
                             expected_batch=256, steps_per_round=32, learning_rate=0.5,
                             weighting=args.weighting, model=ModelConfig(hidden=(16,)))
    labels = ("federated (DP)", "own data only (DP)", "pooled, non-private (upper bound)")
    scores: dict[tuple[str, str], list[dict[str, float]]] = {}
    holdout: dict[str, list[dict[str, float]]] = {}
    cache: dict[str, OwnerData] = {}
    t_train: list[float] = []
    report: dict[str, OwnerReport] = {}
    with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp:
        t0 = time.perf_counter()
        _federation(world, OWNERS, Path(tmp) / "load", 0, cache)  # owner-side load + encode
        t_load = time.perf_counter() - t0
        truth = {n: _truth(world, n, cache[n]) for n in SMALL}
        for seed in range(args.seeds):
            fed = _federation(world, OWNERS, Path(tmp) / f"fed-{seed}", 1 + 10 * seed, cache)
            t0 = time.perf_counter()
            # a fixed run id per seed fixes each owner's sampling and DP noise (DataOwner seeds
            # them from seed, run id and round), so runs with different weightings are paired
            result = fed.train(settings, run_id=f"bench-{seed}")
            t_train.append(time.perf_counter() - t0)
            if seed == 0:
                report = {r.merchant: r for r in fed.report(result)}
            for name, owner in fed.owners.items():
                holdout.setdefault(name, []).append(owner_quality(owner, result.weights,
                                                                  settings))
            _say(f"seed {seed}: federated {t_train[-1]:.1f} s; own-only and pooled models")
            pooled = fit_nonprivate(_pooled(fed), settings, epochs=8, batch=1024, seed=seed)
            for name in SMALL:
                alone = _federation(world, (name,), Path(tmp) / f"{name}-{seed}",
                                    2 + 10 * seed, cache)
                own = alone.train(settings, run_id=f"bench-{seed}").weights
                models = (result.weights, own, pooled)
                for label, w in zip(labels, models, strict=True):
                    q = _quality(w, settings, cache[name], truth[name])
                    scores.setdefault((name, label), []).append(q)
                    _say(f"  {name} {label}: AUUC lift {q['auuc_truth']:+.3f} "
                         f"p {q['auuc_truth_p']:+.3f}")
    rows: list[dict[str, object]] = [
        _summary(name, label, scores[(name, label)], cache[name].train.n_customers)
        | (_wins(scores[(name, label)], scores[(name, labels[1])]) if label == labels[0]
           else {})
        for name in SMALL for label in labels]
    rows += [_holdout_row(name, holdout[name]) for name in OWNERS]
    for name, r in report.items():
        rows.append({"merchant": name, "model": "privacy cost of the federated run",
                     "rounds taken": r.rounds_taken, "ε charged (RDP)": r.epsilon_charged,
                     "ε PLD": r.epsilon_pld, "ε Opacus": r.epsilon_opacus})
    rows.append({"merchant": f"{len(OWNERS)} owners", "model": "speed",
                 "rounds taken": settings.rounds, "load s": round(t_load, 1),
                 "train s": round(t_train[0], 1),
                 "train s (all seeds)": " / ".join(f"{t:.1f}" for t in t_train),
                 "peak RSS MB": round(peak_rss_mb())})
    write_result("federation", rows, title="Federated DP-SGD response model (medium world)",
                 targets={"5 owners × 10 rounds": "≤ 180 s train on CPU",
                          "small merchants": "federated beats own-data-only"},
                 notes=(f"FedAvg weighting '{settings.weighting}' (RoundSettings.weighting). "
                        f"ε = {args.epsilon} per owner over {settings.rounds} rounds at δ = 1e-8 "
                        f"(Poisson q = 1/ceil(n/{settings.expected_batch}), "
                        f"{settings.steps_per_round} steps per round, clip "
                        f"{settings.max_grad_norm}, lr {settings.learning_rate}, hidden "
                        f"{settings.model.hidden}); {args.seeds} training seeds per model "
                        "(fresh ledgers each), mean ± sd over seeds. Lift = P(redeem) × "
                        "per-redeemer spend (federation.model). Qini and AUUC are mean heights "
                        "above random ranking of the incremental scaled spend (0 = random); "
                        "AUUC vs truth is divided by the oracle ranking's (1 = perfect), "
                        "ranking customers by the model's spend lift or by its redemption "
                        "probability. 'beats own-only': seeds (same index) in which the "
                        "federated model scores higher. Privacy cost and train s: first seed's "
                        "run."))
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
