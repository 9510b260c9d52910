"""Controlled offer experiments on twins: treatment vs control, replications, 95% CIs.

Each replication r runs the same twins twice with the same seed (derived from
``(seed, r)``): once with the offer (treatment), once without it (control). Both arms consume
identical random numbers (common random numbers), so every difference between them is caused
by the offer, and twins outside the target behave identically in both arms.

Metrics (sums over twins, SEK where money; "exposed" = targeted twins still customers on the
offer's start day):

- ``reach``: exposed twins; ``redemptions``: redemptions (joins for membership/points);
  ``redemption_rate``: share of exposed twins who redeemed at least once.
- ``incremental_visits`` / ``incremental_revenue`` / ``incremental_margin``: treatment minus
  control, over the whole horizon (so pull-forward and later churn effects count). Revenue and
  gross margin are net of discounts and points earned.
- ``offer_cost``: discounts given plus points earned (booked when earned, times the share
  eventually redeemed); ``cannibalisation``: the part of that cost given on spend the twins
  would have made anyway at full price.
- ``partner_income``: partner fees (exposure + redemption); ``membership_fees``: fees paid.
- ``net_profit = incremental_margin + partner_income + membership_fees`` (incremental margin
  is already net of the offer cost, so the cost is not subtracted twice).
- ``roi = net_profit / offer_cost``: profit per SEK of offer cost; 0 is break-even, −1 means
  the whole cost was lost; undefined (NaN) when the offer costs nothing (e.g. a partner offer).
- ``retention_treatment`` / ``retention_control``: share of exposed twins still customers at
  the horizon; ``incremental_retention`` their difference.

Uncertainty: each CI is a Student-t interval over replications of the replication means. It
covers the Monte Carlo randomness of behaviour (visits, baskets, redemptions, churn) for these
twins and these parameters. It does NOT cover the DP noise and synthesis error behind the twins,
the jitter that turned attribute levels into parameters (fixed for the experiment), or the
response model being wrong; those need re-synthesis and validation against nature.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from retail.catalogue import Catalogue
from retail.offers import Offer
from simulation.effects import build_effect
from simulation.engine_vectorised import DAILY_FIELDS
from simulation.model import MarketModel, RunResult
from simulation.params import TwinParams
from simulation.response import ResponseModel
from twins.schema import SCHEMA
from twinsim.errors import OfferError

__all__ = ["METRICS", "Estimate", "ExperimentResult", "replication_seed", "run_experiment",
           "t_interval"]

METRICS: tuple[str, ...] = (
    "reach", "redemptions", "redemption_rate", "incremental_visits", "incremental_revenue",
    "incremental_margin", "offer_cost", "cannibalisation", "partner_income", "membership_fees",
    "net_profit", "roi", "retention_treatment", "retention_control", "incremental_retention")


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """A mean over replications with a confidence (or prediction) interval."""

    mean: float
    low: float
    high: float
    sd: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isnan(v) else v) for k, v in
                (("mean", self.mean), ("low", self.low), ("high", self.high), ("sd", self.sd))}


def t_interval(values: np.ndarray, confidence: float = 0.95, *,
               predictive: bool = False) -> Estimate:
    """Student-t interval for the mean of ``values`` (NaNs dropped); ``predictive`` widens it
    to an interval for one more draw (``sd·sqrt(1 + 1/R)``)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Estimate(mean=math.nan, low=math.nan, high=math.nan, sd=math.nan)
    m = float(v.mean())
    if v.size == 1:
        return Estimate(mean=m, low=math.nan, high=math.nan, sd=math.nan)
    sd = float(v.std(ddof=1))
    q = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1))
    half = q * sd * (math.sqrt(1 + 1 / v.size) if predictive else 1 / math.sqrt(v.size))
    return Estimate(mean=m, low=m - half, high=m + half, sd=sd)


def replication_seed(seed: int, replication: int) -> int:
    """The seed both arms of one replication share."""
    return int(np.random.SeedSequence([seed, replication]).generate_state(1)[0])


@dataclass(frozen=True, kw_only=True, eq=False)
class ExperimentResult:
    offer: dict[str, Any]
    engine: str
    n_twins: int
    days: int
    replications: int
    seed: int
    confidence: float
    overall: dict[str, Estimate]
    segment_by: str | None = None
    segments: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    daily: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"offer": self.offer, "engine": self.engine, "n_twins": self.n_twins,
                "days": self.days, "replications": self.replications, "seed": self.seed,
                "confidence": self.confidence,
                "overall": {k: e.to_dict() for k, e in self.overall.items()},
                "segment_by": self.segment_by,
                "segments": {s: {k: e.to_dict() for k, e in m.items()}
                             for s, m in self.segments.items()},
                "daily": self.daily.to_dicts()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_polars(self) -> pl.DataFrame:
        """One row per (segment, metric); the overall rows have segment ``"all"``."""
        rows = [{"segment": seg, "metric": k, "mean": e.mean, "low": e.low, "high": e.high}
                for seg, metrics in (("all", self.overall), *self.segments.items())
                for k, e in metrics.items()]
        return pl.DataFrame(rows, schema={"segment": pl.String, "metric": pl.String,
                                          "mean": pl.Float64, "low": pl.Float64,
                                          "high": pl.Float64})


def run_experiment(params: TwinParams, offer: Offer, *, catalogue: Catalogue | None = None,
                   days: int = 90, replications: int = 10, seed: int = 0,
                   engine: str = "vectorised", segments: str | None = None,
                   response: ResponseModel | None = None, confidence: float = 0.95,
                   min_cohort: int = 1) -> ExperimentResult:
    """Trial ``offer`` on the twins: treatment vs control with CRN, over ``replications``."""
    if replications < 2:
        raise ValueError(f"replications: need >= 2 for an interval, got {replications}")
    if offer.start_day >= days:
        raise OfferError(f"offer {offer.name!r} starts on day {offer.start_day}, after the "
                         f"{days}-day horizon; simulate longer or start earlier")
    effect = build_effect(offer, params, catalogue, response=response, min_cohort=min_cohort)
    codes, labels = segment_codes(params, segments)
    per_rep: list[dict[str, np.ndarray]] = []
    series: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
    for r in range(replications):
        s = replication_seed(seed, r)
        # agent_limit=0: the vectorised engine needs no inspectable agents here
        tr = MarketModel(params, catalogue=catalogue, effect=effect, engine=engine,
                         seed=s, agent_limit=0).run(days)
        ct = MarketModel(params, catalogue=catalogue, effect=effect.as_control(),
                         engine=engine, seed=s, agent_limit=0).run(days)
        per_rep.append(group_metrics(tr, ct, codes, len(labels)))
        series.append((tr.daily, ct.daily))
    overall = {k: t_interval(np.array([m[k].sum() if k in _SUMMABLE else m[k + "_all"]
                                       for m in per_rep]), confidence) for k in METRICS}
    segs = ({lab: {k: t_interval(np.array([m[k][i] for m in per_rep]), confidence)
                   for k in METRICS} for i, lab in enumerate(labels)} if segments else {})
    return ExperimentResult(offer=offer.to_dict(), engine=engine, n_twins=params.n, days=days,
                            replications=replications, seed=seed, confidence=confidence,
                            overall=overall, segment_by=segments, segments=segs,
                            daily=_daily_frame(series))


def segment_codes(params: TwinParams, column: str | None) -> tuple[np.ndarray, list[str]]:
    """Integer segment code per twin and the segment labels (one segment when None)."""
    if column is None:
        return np.zeros(params.n, dtype=np.int64), ["all"]
    table = params.attributes
    if table is None or column not in table.columns:
        known = [] if table is None else table.columns
        raise ValueError(f"segments: no twin attribute {column!r}; known: {known}")
    col = table[column]
    if column in SCHEMA and col.dtype.is_integer():
        levels = list(SCHEMA[column].levels)
        codes = col.to_numpy().astype(np.int64)
        used = np.unique(codes)
        remap = np.full(len(levels), -1)
        remap[used] = np.arange(used.size)
        return remap[codes], [levels[c] for c in used]
    values = col.cast(pl.String).fill_null("(missing)").to_numpy()
    labels, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [str(x) for x in labels]


_SUMMABLE = ("reach", "redemptions", "incremental_visits", "incremental_revenue",
             "incremental_margin", "offer_cost", "cannibalisation", "partner_income",
             "membership_fees", "net_profit")


def group_metrics(tr: RunResult, ct: RunResult, codes: np.ndarray, k: int
                  ) -> dict[str, np.ndarray]:
    """Metrics of one replication per group (arrays of length k), plus ``<ratio>_all``."""
    def total(x: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        w = x.astype(np.float64) if where is None else np.where(where, x, 0).astype(np.float64)
        return np.bincount(codes, weights=w, minlength=k)

    exposed = tr.exposed
    out = {"reach": total(exposed), "redemptions": total(tr.totals.redemptions),
           "incremental_visits": total(tr.totals.visits) - total(ct.totals.visits),
           "incremental_revenue": total(tr.totals.revenue) - total(ct.totals.revenue),
           "incremental_margin": total(tr.totals.margin) - total(ct.totals.margin),
           "offer_cost": total(tr.totals.cost), "cannibalisation": total(tr.totals.cannibal)}
    income = total(tr.totals.income) - total(ct.totals.income)
    member = tr.mode == "persistent"
    out["membership_fees"] = income if member else np.zeros(k)
    out["partner_income"] = np.zeros(k) if member else income
    out["net_profit"] = out["incremental_margin"] + income
    redeemers, alive_t, alive_c = (total(exposed & tr.redeemed), total(exposed & tr.active),
                                   total(exposed & ct.active))
    ratios = {"redemption_rate": (redeemers, out["reach"]), "roi": (out["net_profit"],
              out["offer_cost"]), "retention_treatment": (alive_t, out["reach"]),
              "retention_control": (alive_c, out["reach"])}
    for name, (num, den) in ratios.items():
        out[name] = _ratio(num, den)
        out[name + "_all"] = _ratio(num.sum(), den.sum())
    out["incremental_retention"] = out["retention_treatment"] - out["retention_control"]
    out["incremental_retention_all"] = (out["retention_treatment_all"]
                                        - out["retention_control_all"])
    return out


def _ratio(num: Any, den: Any) -> Any:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(den) > 0, np.asarray(num, dtype=float)
                        / np.maximum(np.asarray(den, dtype=float), 1e-300), np.nan)


def _daily_frame(series: Sequence[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]
                 ) -> pl.DataFrame:
    """Mean daily aggregates per arm over replications (for charts)."""
    frames = []
    for arm, j in (("treatment", 0), ("control", 1)):
        mean = {k: np.mean([s[j][k] for s in series], axis=0) for k in DAILY_FIELDS}
        days = len(mean["visits"])
        frames.append(pl.DataFrame({"day": np.arange(days), "arm": [arm] * days, **mean}))
    return pl.concat(frames)

