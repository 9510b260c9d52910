"""What would really have happened: nature's answer for an offer, with and without it.

The simulation continues each customer from the END of the observed period (their state in
``_truth``: churned or not, pull-forward stock, last purchases; the two-week rhythm goes on
from its phase) for ``days`` days. Both arms use the same counter-based uniforms (common
random numbers), so the only difference between them is the offer's effect: an offer that
touches nobody gives identical arms, exactly.

Nothing outside ``retail/world`` may import this module except tests, benchmarks and the
evaluation module: the twin pipeline must never read nature's parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from retail.offers import Offer
from retail.world import rng as crn
from retail.world.behaviour import Effect, Outcome, step_day
from retail.world.response import compile_offer
from retail.world.truth import MerchantTruth, read_merchant_truth

__all__ = ["OUTCOME_COLUMNS", "Counterfactual", "counterfactual", "forecast_truth"]

OUTCOME_COLUMNS = ("customer_id", "visits", "spend", "gross_margin", "redeemed", "redemptions",
                   "discount_cost", "partner_income", "fee_income", "active_at_end")


@dataclass(frozen=True, kw_only=True)
class Counterfactual:
    """Per-customer outcomes with (``treated``) and without (``baseline``) the offer, plus
    daily totals (``daily``: day, date, arm, visits, spend, gross_margin, discount_cost,
    income) over the same ``days`` after the observed period."""

    merchant_id: str
    offer: Offer | None
    days: int
    treated: pl.DataFrame
    baseline: pl.DataFrame
    daily: pl.DataFrame

    def totals(self) -> dict[str, dict[str, float]]:
        """Sums per arm: customers, visits, spend, gross_margin, discount_cost, income,
        redeemers, redemptions, active_at_end."""
        return {"treated": _totals(self.treated), "baseline": _totals(self.baseline)}

    def incremental(self) -> dict[str, float]:
        """Treated minus baseline, the redemption rate and the ROI.

        ``incremental_profit`` = Δ(gross margin, already net of discounts) + Δ(partner and
        fee income); ``roi`` = incremental_profit / discount_cost of the treated arm (nan
        when the offer costs nothing).
        """
        t, b = _totals(self.treated), _totals(self.baseline)
        d = {f"incremental_{k}": t[k] - b[k] for k in
             ("visits", "spend", "gross_margin", "income", "active_at_end")}
        d["incremental_revenue"] = d["incremental_spend"]
        d["incremental_margin"] = d["incremental_gross_margin"]
        d["incremental_profit"] = d["incremental_gross_margin"] + d["incremental_income"]
        d["redemption_rate"] = t["redeemers"] / t["customers"] if t["customers"] else 0.0
        d["discount_cost"] = t["discount_cost"]
        d["roi"] = d["incremental_profit"] / t["discount_cost"] if t["discount_cost"] else (
            float("nan"))
        return d


def _totals(df: pl.DataFrame) -> dict[str, float]:
    s = df.select(
        pl.len().alias("customers"), pl.col("visits").sum(), pl.col("spend").sum(),
        pl.col("gross_margin").sum(), pl.col("discount_cost").sum(),
        (pl.col("partner_income") + pl.col("fee_income")).sum().alias("income"),
        pl.col("redeemed").sum().alias("redeemers"), pl.col("redemptions").sum(),
        pl.col("active_at_end").sum()).row(0, named=True)
    return {k: float(v) for k, v in s.items()}


def counterfactual(world_dir: str | Path, merchant_id: str, offer: Offer | None, *,
                   customer_ids: Sequence[str] | pl.Series | None = None, days: int = 90,
                   seed: int = 0) -> Counterfactual:
    """Nature's outcome for ``customer_ids`` (default: all) over ``days`` days after the
    observed period, with and without ``offer`` (starting on ``offer.start_day``).

    The offer's ``target`` filters are not applied here: choose the customers with
    ``customer_ids``. All of them are exposed to the offer in the treated arm.
    """
    if days < 1:
        raise ValueError(f"days: must be >= 1, got {days!r}")
    truth = _subset(read_merchant_truth(world_dir, merchant_id), customer_ids)
    keys = crn.rekey(truth.pop.key, seed)
    first = truth.n_days
    effect: Effect | None = None
    if offer is not None:
        offer.check_categories(truth.market.merchant_type)
        effect = compile_offer(offer, truth.pop, truth.market, keys, start=first + offer.start_day,
                               exposed=np.ones(truth.pop.n, bool))
    base, base_daily = _run(truth, keys, None, first, days)
    if effect is None:
        treated, treated_daily = base, base_daily
    else:
        treated, treated_daily = _run(truth, keys, effect, first, days)
    daily = pl.concat([base_daily.with_columns(pl.lit("baseline").alias("arm")),
                       treated_daily.with_columns(pl.lit("treated").alias("arm"))])
    origin = truth.market.start + dt.timedelta(days=first)
    daily = daily.with_columns((pl.lit(origin) + pl.duration(days=pl.col("day"))).alias("date"))
    return Counterfactual(merchant_id=merchant_id, offer=offer, days=days, treated=treated,
                          baseline=base, daily=daily.select("day", "date", "arm", pl.exclude(
                              "day", "date", "arm")))


def forecast_truth(world_dir: str | Path, merchant_id: str, *,
                   customer_ids: Sequence[str] | pl.Series | None = None, days: int = 90,
                   seed: int = 0) -> pl.DataFrame:
    """Nature's no-offer outcome per customer (the baseline arm of a counterfactual)."""
    return counterfactual(world_dir, merchant_id, None, customer_ids=customer_ids, days=days,
                          seed=seed).baseline


def _subset(truth: MerchantTruth, customer_ids: Sequence[str] | pl.Series | None
            ) -> MerchantTruth:
    if customer_ids is None:
        return truth
    wanted = pl.Series("customer_id", list(customer_ids), dtype=pl.String)
    pos = pl.DataFrame({"customer_id": truth.ids}).with_row_index("i").join(
        pl.DataFrame({"customer_id": wanted}), on="customer_id", how="right")
    missing = pos.filter(pl.col("i").is_null())["customer_id"]
    if missing.len():
        raise ValueError(f"customer_ids: {missing.len()} unknown to this merchant, e.g. "
                         f"{missing[0]!r}")
    idx = pos["i"].to_numpy().astype(np.int64)
    return MerchantTruth(truth.ids.gather(idx), truth.pop.take(idx), truth.state.take(idx),
                         truth.market, truth.n_days)


def _run(truth: MerchantTruth, keys: np.ndarray, effect: Effect | None, first: int,
         days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    state = truth.state.take(np.arange(truth.pop.n))  # a private copy per arm
    out = Outcome.zeros(truth.pop.n)
    rows = []
    for day in range(first, first + days):
        before = (out.visits.sum(), out.spend.sum(), out.margin.sum(), out.discount_cost.sum(),
                  out.partner_income.sum() + out.fee_income.sum())
        step_day(day, truth.pop, state, truth.market, keys, effect, out)
        after = (out.visits.sum(), out.spend.sum(), out.margin.sum(), out.discount_cost.sum(),
                 out.partner_income.sum() + out.fee_income.sum())
        rows.append((day - first, *(a - b for a, b in zip(after, before, strict=True))))
    daily = pl.DataFrame(rows, schema={"day": pl.Int32, "visits": pl.Int64, "spend": pl.Float64,
                                       "gross_margin": pl.Float64,
                                       "discount_cost": pl.Float64, "income": pl.Float64},
                         orient="row")
    per = pl.DataFrame({
        "customer_id": truth.ids, "visits": out.visits, "spend": np.round(out.spend, 2),
        "gross_margin": np.round(out.margin, 2), "redeemed": out.redemptions > 0,
        "redemptions": out.redemptions, "discount_cost": np.round(out.discount_cost, 2),
        "partner_income": np.round(out.partner_income, 2),
        "fee_income": np.round(out.fee_income, 2), "active_at_end": state.active.copy()})
    return per, daily
