"""Validity: the whole twin pipeline against nature's true uplift, offer by offer.

This is the evaluation harness, the one place in the application that may call nature
(:mod:`retail.world`): hub-side packages never do. For one owner (a merchant of a world) and
a privacy loss ε it runs the pipeline as a merchant would, then asks nature what really
happens:

1. **Release** (owner side): the owner's DP release at ε via :func:`twins.release.release_owner`.
   By default the ledger is a *scratch* copy in a temporary folder (the owner's ledger file
   copied if it exists, else a fresh one with cap ``max(ε, 2)``), so an evaluation never
   spends a real owner's budget; ``scratch=False`` charges the owner's real ledger.
   ``ε = inf`` is a documented NON-PRIVATE mode: the same queries are released without
   noise and without any ledger, to separate model error from DP error.
2. **Twins** (hub side): as many twins as the owner has consenting customers, synthesised
   from the release (:func:`twins.hub.twins_from_releases`), seeded.
3. **Calibration** (hub side): the response model is fitted to the release's DP campaign
   tables (:func:`simulation.calibration.calibrate_response`); the past campaigns' terms
   (the owner's business facts, not customer data) are read from the owner folder.
4. **Prediction**: for each of ``replications`` rounds, fresh twins (synthesis seed and
   parameter jitter vary) and a response drawn within its calibration uncertainty
   (:meth:`CalibratedResponse.draw`) run the offer and its control (common random numbers)
   over ``days``; the quantity per round is the incremental profit per *targeted twin*.
5. **Truth** (owner side + nature): the SAME targeting filters applied to the owner's real
   feature table (:func:`twins.features` + :class:`twins.schema.CohortFilter`) give the real
   targeted customers; :func:`retail.world.counterfactual` gives their outcome with and
   without the offer over the same ``days``.

Scale (consistent everywhere): predicted total = mean per targeted twin × number of REAL
targeted customers, so cohort-size errors of the twins do not enter; the interval is a 95%
Student-t *prediction* interval over the rounds (synthesis resampling, response uncertainty
and behaviour noise),
scaled the same way. The compared quantity is incremental profit = incremental gross margin
(net of discounts and points) + partner and membership fee income; for offers without fees
it equals the incremental gross margin, which is reported too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from privacy.budget import LEDGER_FILE, PrivacyBudget
from privacy.release import RELEASE_SCHEMA_VERSION, Measurement, Release
from retail.load import load_merchant
from retail.offers import Filter, Offer, load_offer
from retail.world import counterfactual
from simulation.calibration import CalibratedResponse, calibrate_response
from simulation.effects import build_effect
from simulation.experiment import replication_seed, t_interval
from simulation.model import MarketModel
from simulation.params import params_from_twins
from twins.features import features
from twins.hub import response_table, twins_from_releases
from twins.release import owner_queries, release_owner
from twins.schema import SCHEMA, CohortFilter
from twinsim import __version__
from twinsim.errors import CohortTooSmall, OfferError

__all__ = ["VALIDITY_TARGETS", "OfferEvaluation", "OwnerModel", "SuiteEntry",
           "ValidityReport", "evaluate_offer", "evaluate_repeats", "evaluate_suite",
           "evaluate_uplift", "exact_release", "load_suite", "meets_targets", "owner_release",
           "pool_releases", "prepare_owner", "summarise", "truth_mask"]

# what the validity suite must show (issue #5): median relative error at most, coverage of
# the 95 % interval and Spearman rank correlation at least
VALIDITY_TARGETS: dict[str, tuple[str, float]] = {
    "median_rel_error": ("<=", 0.20), "ci_coverage": (">=", 0.80), "spearman": (">=", 0.80)}


@dataclass(frozen=True, kw_only=True, eq=False)
class OwnerModel:
    """What the pipeline built for one owner at one ε (twins table, calibrated response) and
    the owner-side feature table kept only to select the real targeted customers."""

    world_dir: Path
    merchant_id: str
    merchant_type: str
    epsilon: float
    release: Release
    response: CalibratedResponse
    feature_table: pl.DataFrame = field(repr=False)
    fit_options: Mapping[str, Any] | None = None

    @property
    def n_customers(self) -> int:
        return self.feature_table.height


@dataclass(frozen=True, kw_only=True)
class OfferEvaluation:
    """Predicted vs true incremental profit (and margin) of one offer on one owner."""

    merchant_id: str
    offer: str
    epsilon: float
    targeted_real: int
    targeted_twins: float
    true_profit: float
    pred_profit: float
    pred_low: float
    pred_high: float
    true_margin: float
    pred_margin: float
    true_baseline_margin: float  # no-offer gross margin of the targeted customers
    pred_baseline_margin: float  # the twins' control arm, same scale
    true_redemption_rate: float
    pred_redemption_rate: float
    true_cost: float = math.nan  # discounts (and points) given to the targeted customers
    pred_cost: float = math.nan
    pred_se: float = math.nan  # Monte-Carlo standard error of pred_profit (over the rounds)

    @property
    def covered(self) -> bool:
        return self.pred_low <= self.true_profit <= self.pred_high

    @property
    def rel_error(self) -> float:
        return abs(self.pred_profit - self.true_profit) / max(abs(self.true_profit), 1e-9)

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(covered=self.covered, rel_error=self.rel_error)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}


@contextmanager
def _ledger(owner_dir: Path, epsilon: float, scratch: bool) -> Iterator[Path | None]:
    """The ledger to charge: a scratch copy (default) or the owner's own (None)."""
    if not scratch:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="twinsim-eval-") as tmp:
        path = Path(tmp) / LEDGER_FILE
        real = owner_dir / LEDGER_FILE
        if real.is_file():
            shutil.copy2(real, path)
        else:
            PrivacyBudget.init_owner(owner_dir, period="evaluation",
                                     cap_epsilon=max(epsilon, 2.0), ledger_path=path)
        yield path


def exact_release(owner_dir: str | Path, feature_table: pl.DataFrame | None = None) -> Release:
    """NON-PRIVATE: the release's queries without noise and without a ledger charge.

    For evaluation only (ε = ∞ separates model error from DP error); never publish it.
    """
    merchant = load_merchant(owner_dir, now=_now_after(owner_dir))
    plan = owner_queries(merchant, feature_table=feature_table)
    meas = tuple(Measurement(name=q.name, attributes=q.attributes,
                             counts=tuple(int(x) for x in q.counts), mechanism="gaussian",
                             scale=0.0, rho=0.0, epsilon=0.0, sensitivity=q.sensitivity_l2)
                 for q in plan.queries)
    return Release.build(
        schema_version=RELEASE_SCHEMA_VERSION, release_id=f"nonprivate-{merchant.info.merchant_id}",
        owner=f"nonprivate:{merchant.info.merchant_id}", merchant_type=merchant.info.merchant_type,
        regions=tuple(merchant.info.regions), period="non-private", domain=plan.domain,
        measurements=meas, privacy_loss={"rho": 0.0, "epsilon": 0.0, "delta": 0.0},
        ledger_entry_id=0, ledger_entry_hash="none (non-private evaluation)",
        software_version=__version__, created_at="non-private")


def _now_after(owner_dir: str | Path) -> dt.datetime:
    """A 'now' after the owner's period (world data lie in the simulated past/future)."""
    info = json.loads((Path(owner_dir) / "merchant.json").read_text(encoding="utf-8"))
    return dt.datetime.combine(dt.date.fromisoformat(info["period_end"]), dt.time()) + \
        dt.timedelta(days=1)


def _campaign_offers(owner_dir: Path, merchant_type: str) -> dict[int, Offer]:
    """Terms of the owner's past campaigns by 1-based position (as in the release)."""
    camp = pl.read_parquet(owner_dir / "campaigns.parquet")
    return {k: Offer.from_json(text, merchant_type=merchant_type)
            for k, text in enumerate(camp["offer"].to_list(), start=1)}


def owner_release(world_dir: str | Path, merchant_id: str, *, epsilon: float,
                  scratch: bool = True) -> tuple[Release, pl.DataFrame]:
    """The owner's release at ε (exact for ε = inf) and its owner-side feature table."""
    if not (epsilon > 0):
        raise ValueError(f"epsilon: must be > 0 (or inf for the non-private mode), got {epsilon}")
    owner = Path(world_dir) / merchant_id
    if not (owner / "merchant.json").is_file():
        raise ValueError(f"{owner}: no merchant {merchant_id!r} in this world")
    merchant = load_merchant(owner, now=_now_after(owner))
    ft = features(merchant.tables, merchant.info.merchant_type, merchant.info.period_end)
    if math.isinf(epsilon):
        return exact_release(owner, ft), ft
    with _ledger(owner, epsilon, scratch) as ledger:
        release = release_owner(owner, epsilon=epsilon, requester="twinsim evaluate",
                                purpose="validity evaluation", ledger_path=ledger,
                                now=_now_after(owner), feature_table=ft)
    return release, ft


def prepare_owner(world_dir: str | Path, merchant_id: str, *, epsilon: float, seed: int = 0,
                  scratch: bool = True, fit_options: Mapping[str, Any] | None = None
                  ) -> OwnerModel:
    """Release (or exact release for ε = inf), twins for calibration, calibrated response.

    ``fit_options`` go to the synthesiser (e.g. ``{"classes": (16,), "steps": 200}`` for a
    quick, rougher fit)."""
    release, ft = owner_release(world_dir, merchant_id, epsilon=epsilon, scratch=scratch)
    owner = Path(world_dir) / merchant_id
    mtype = release.merchant_type
    twins = twins_from_releases([release], n=max(ft.height, 1), seed=seed, options=fit_options)
    params = params_from_twins(twins, mtype, seed=seed)
    response = calibrate_response(response_table([release]), params,
                                  offers=_campaign_offers(owner, mtype), seed=seed)
    return OwnerModel(world_dir=Path(world_dir), merchant_id=merchant_id, merchant_type=mtype,
                      epsilon=epsilon, release=release, response=response, feature_table=ft,
                      fit_options=fit_options)


def truth_mask(feature_table: pl.DataFrame, filters: Sequence[Filter]) -> np.ndarray:
    """The real customers an offer's target filters select (schema attributes only)."""
    clauses = []
    for f in filters:
        if f.attribute not in SCHEMA:
            raise OfferError(f"offer target filter {str(f)!r}: {f.attribute!r} is not a twin "
                             "schema attribute, so real customers cannot be selected by it")
        clauses.append(f"{f.attribute}={f.value}" if f.op == "in" else str(f))
    return CohortFilter.parse(clauses).mask(feature_table) if clauses else np.ones(
        feature_table.height, dtype=bool)


def _predict(model: OwnerModel, offer: Offer, days: int, replications: int, seed: int
             ) -> dict[str, np.ndarray]:
    """Per round: incremental profit / margin, baseline margin, redemption per targeted twin.

    Rounds come in antithetic pairs of the response draw (round 2k+1 mirrors round 2k's,
    :meth:`CalibratedResponse.draw`); twins and simulation are drawn afresh every round."""
    out: dict[str, list[float]] = {k: [] for k in ("profit", "margin", "base", "rate", "n",
                                                   "cost")}
    for r in range(replications):
        s = replication_seed(seed, r)
        response = model.response.draw(np.random.default_rng(replication_seed(seed, r - r % 2)),
                                        antithetic=r % 2 == 1)
        twins = twins_from_releases([model.release], n=model.n_customers, seed=s,
                                    options=model.fit_options)
        params = params_from_twins(twins, model.merchant_type, seed=s)
        eff = build_effect(offer, params, response=response)
        tr = MarketModel(params, effect=eff, seed=s, agent_limit=0).run(days)
        ct = MarketModel(params, effect=eff.as_control(), seed=s, agent_limit=0).run(days)
        t = eff.targeted
        n = max(int(t.sum()), 1)
        margin = float((tr.totals.margin[t].sum() - ct.totals.margin[t].sum()) / n)
        income = float((tr.totals.income[t].sum() - ct.totals.income[t].sum()) / n)
        out["profit"].append(margin + income)
        out["margin"].append(margin)
        out["base"].append(float(ct.totals.margin[t].sum() / n))
        # as nature counts it: targeted customers who redeemed, over all targeted (also
        # those who had lapsed before the offer arrived)
        out["rate"].append(float((tr.redeemed & tr.exposed)[t].sum() / n))
        out["n"].append(float(t.sum()))
        out["cost"].append(float(tr.totals.cost[t].sum() / n))
    return {k: np.asarray(v) for k, v in out.items()}


def monte_carlo_se(values: np.ndarray) -> float:
    """Standard error of the mean of rounds drawn in antithetic pairs (0-1, 2-3, ...): the
    spread of the pairs' means over the square root of their number (a trailing unpaired
    round is left out of it; one pair or none: the plain sd / sqrt(n))."""
    v = np.asarray(values, dtype=float)
    pairs = v[: v.size - v.size % 2].reshape(-1, 2).mean(axis=1)
    if pairs.size < 2:
        return float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(pairs.std(ddof=1) / math.sqrt(pairs.size))


def evaluate_offer(model: OwnerModel, offer: Offer, *, days: int = 90, replications: int = 8,
                   seed: int = 0) -> OfferEvaluation:
    """Predicted (twins) vs true (nature) incremental profit of ``offer`` for this owner."""
    offer.check_categories(model.merchant_type)
    mask = truth_mask(model.feature_table, offer.target)
    ids = model.feature_table.filter(pl.Series(mask))["customer_id"]
    if ids.len() == 0:
        raise CohortTooSmall(f"offer {offer.name!r}: its target selects no real customer of "
                             f"{model.merchant_id}")
    pred = _predict(model, offer, days, replications, seed)
    cf = counterfactual(model.world_dir, model.merchant_id, offer, customer_ids=ids,
                        days=days, seed=seed)
    inc, base = cf.incremental(), cf.totals()["baseline"]
    k = ids.len()
    est = t_interval(pred["profit"], predictive=True)
    return OfferEvaluation(
        merchant_id=model.merchant_id, offer=offer.name, epsilon=model.epsilon,
        targeted_real=k, targeted_twins=float(pred["n"].mean()),
        true_profit=inc["incremental_profit"], pred_profit=est.mean * k,
        pred_low=est.low * k, pred_high=est.high * k,
        true_margin=inc["incremental_margin"], pred_margin=float(pred["margin"].mean()) * k,
        true_baseline_margin=base["gross_margin"],
        pred_baseline_margin=float(pred["base"].mean()) * k,
        true_redemption_rate=inc["redemption_rate"],
        pred_redemption_rate=float(pred["rate"].mean()),
        true_cost=inc["discount_cost"], pred_cost=float(pred["cost"].mean()) * k,
        pred_se=monte_carlo_se(pred["profit"]) * k)


def evaluate_uplift(world_dir: str | Path, merchant_id: str, offer: Offer, *, epsilon: float,
                    days: int = 90, replications: int = 8, seed: int = 0,
                    scratch: bool = True, fit_options: Mapping[str, Any] | None = None
                    ) -> OfferEvaluation:
    """The whole path for one offer (release, twins, calibration, simulation, truth)."""
    model = prepare_owner(world_dir, merchant_id, epsilon=epsilon, seed=seed, scratch=scratch,
                          fit_options=fit_options)
    return evaluate_offer(model, offer, days=days, replications=replications, seed=seed)


@dataclass(frozen=True, kw_only=True)
class SuiteEntry:
    merchant_id: str
    offer: Offer
    file: str


def load_suite(path: str | Path, world_merchant_types: dict[str, str] | None = None
               ) -> list[SuiteEntry]:
    """``suite.json``: ``{"offers": [{"file": "x.json", "merchant": "grocery_1"}, ...]}``
    with offer files relative to the suite file."""
    p = Path(path)
    try:
        spec = json.loads(p.read_text(encoding="utf-8"))
        items = spec["offers"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise OfferError(f"{p}: not a validity suite ({exc}); expected "
                         '{"offers": [{"file": ..., "merchant": ...}]}') from None
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"file", "merchant"} <= set(item):
            raise OfferError(f"{p}: offers[{i}] needs 'file' and 'merchant'")
        mtype = (world_merchant_types or {}).get(item["merchant"])
        out.append(SuiteEntry(merchant_id=item["merchant"], file=item["file"],
                              offer=load_offer(p.parent / item["file"], merchant_type=mtype)))
    return out


@dataclass(frozen=True, kw_only=True)
class ValidityReport:
    epsilon: float
    rows: tuple[OfferEvaluation, ...]
    summary: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"epsilon": None if math.isinf(self.epsilon) else self.epsilon,
                "non_private": math.isinf(self.epsilon),
                "offers": [r.to_dict() for r in self.rows], "summary": self.summary}


def summarise(rows: Sequence[OfferEvaluation]) -> dict[str, float]:
    """median_rel_error, ci_coverage, spearman (of predicted vs true profit), and the
    median error scaled by the cohort's baseline margin (robust when the truth is near 0)."""
    if not rows:
        return {}
    true = np.array([r.true_profit for r in rows])
    pred = np.array([r.pred_profit for r in rows])
    rho = float(stats.spearmanr(pred, true).statistic) if len(rows) > 2 else math.nan
    scaled = np.abs(pred - true) / np.maximum(np.abs([r.true_baseline_margin for r in rows]),
                                              1e-9)
    return {"offers": float(len(rows)),
            "median_rel_error": float(np.median([r.rel_error for r in rows])),
            "ci_coverage": float(np.mean([r.covered for r in rows])),
            "spearman": rho,
            "median_error_vs_baseline_margin": float(np.median(scaled))}


def evaluate_suite(world_dir: str | Path, suite: Sequence[SuiteEntry], *, epsilon: float,
                   days: int = 90, replications: int = 8, seed: int = 0, scratch: bool = True,
                   fit_options: Mapping[str, Any] | None = None, on_done: Any = None
                   ) -> ValidityReport:
    """Every offer of the suite; each owner is released, synthesised and calibrated once."""
    models: dict[str, OwnerModel] = {}
    rows = []
    for entry in suite:
        if entry.merchant_id not in models:
            models[entry.merchant_id] = prepare_owner(world_dir, entry.merchant_id,
                                                      epsilon=epsilon, seed=seed,
                                                      scratch=scratch, fit_options=fit_options)
        offer = replace(entry.offer, merchant_type=None)
        rows.append(evaluate_offer(models[entry.merchant_id], offer, days=days,
                                   replications=replications, seed=seed))
        if on_done is not None:
            on_done(rows[-1])
    return ValidityReport(epsilon=epsilon, rows=tuple(rows), summary=summarise(rows))


def meets_targets(summary: Mapping[str, float]) -> bool:
    """Whether a summary meets every :data:`VALIDITY_TARGETS` figure."""
    ok = {"<=": lambda v, t: v <= t, ">=": lambda v, t: v >= t}
    return all(k in summary and math.isfinite(summary[k]) and ok[op](summary[k], t)
               for k, (op, t) in VALIDITY_TARGETS.items())


def evaluate_repeats(world_dir: str | Path, suite: Sequence[SuiteEntry], *, epsilon: float,
                     repeats: int, days: int = 90, replications: int = 8, seed: int = 0,
                     fit_options: Mapping[str, Any] | None = None, on_done: Any = None
                     ) -> list[ValidityReport]:
    """The suite on ``repeats`` independent releases at ε (scratch ledgers; OpenDP's noise
    is not seeded, so each release is a fresh draw; twins, simulation and truth keep
    ``seed``, so the reports differ by the releases' noise only)."""
    if repeats < 1:
        raise ValueError(f"repeats: must be >= 1, got {repeats}")
    if repeats > 1 and math.isinf(epsilon):
        raise ValueError("repeats: more than one release needs a finite epsilon (the "
                         "non-private mode has no noise to draw again)")
    return [evaluate_suite(world_dir, suite, epsilon=epsilon, days=days,
                           replications=replications, seed=seed, scratch=True,
                           fit_options=fit_options, on_done=on_done) for _ in range(repeats)]


def pool_releases(reports: Sequence[ValidityReport]) -> dict[str, Any]:
    """What several releases at one ε say together.

    ``summary``: the median relative error and the interval coverage over every (offer,
    release) pair, the mean Spearman over releases, and how many releases meet all
    :data:`VALIDITY_TARGETS` (``releases_meeting_targets`` of ``releases``). ``offers``: per
    offer, the truth, the mean and sd of the releases' predictions, ``dp_sd`` = what the DP
    noise of a release moves a prediction by (that sd with the rounds' own Monte-Carlo error,
    ``pred_se``, taken out) and ``dp_sd_over_truth`` = ``dp_sd`` / |truth|: above about 0.3
    no predictor keeps this offer's relative error within 0.2 in most releases, however good
    its model.
    """
    if not reports:
        raise ValueError("pool_releases: no reports")
    rows = [r for rep in reports for r in rep.rows]
    offers = []
    for i, first in enumerate(reports[0].rows):
        same = [rep.rows[i] for rep in reports]
        pred = np.array([r.pred_profit for r in same])
        sd = float(pred.std(ddof=1)) if len(same) > 1 else math.nan
        mc = np.array([r.pred_se for r in same])
        mc2 = float(np.mean(mc ** 2)) if np.isfinite(mc).all() else 0.0
        dp = math.sqrt(max(sd ** 2 - mc2, 0.0)) if math.isfinite(sd) else math.nan
        offers.append({"merchant_id": first.merchant_id, "offer": first.offer,
                       "true_profit": first.true_profit, "pred_mean": float(pred.mean()),
                       "pred_sd_releases": sd, "dp_sd": dp,
                       "dp_sd_over_truth": dp / max(abs(first.true_profit), 1e-9),
                       "covered_share": float(np.mean([r.covered for r in same])),
                       "median_rel_error": float(np.median([r.rel_error for r in same]))})
    spear = [rep.summary.get("spearman", math.nan) for rep in reports]
    summary = {"releases": float(len(reports)), "offers": float(len(reports[0].rows)),
               "median_rel_error": float(np.median([r.rel_error for r in rows])),
               "ci_coverage": float(np.mean([r.covered for r in rows])),
               "spearman": float(np.nanmean(spear)) if np.isfinite(spear).any() else math.nan,
               "releases_meeting_targets": float(sum(meets_targets(rep.summary)
                                                     for rep in reports))}
    return {"summary": summary, "offers": offers}
