"""Owner side: turn a merchant folder into one DP ``Release`` (marginals + campaign tables).

:func:`release_owner` is the one call a data owner makes. In order:

1. open the owner's budget (no ledger: ``UnknownOwner`` telling to run ``twinsim ledger
   init``) and pre-check the requested loss against the cap (fail fast, before loading);
2. load the folder with the validating loader (:func:`retail.load.load_merchant`, strict);
3. build the feature table (one row per consenting customer, :func:`twins.features`);
4. build the pre-noise queries (:func:`owner_queries`): every marginal of the workload and,
   per past campaign, an exposure-count table and a clamped-spend table;
5. :func:`privacy.measure_and_release` charges the ledger (atomically, re-checking the cap),
   then noises; an over-budget request raises ``BudgetExceeded`` and changes nothing;
6. the JSON goes to a temporary file in the output folder, renamed into place only after
   everything succeeded (so a refused or failed release never leaves a file behind).

Budget split (zCDP ρ; ε requests are converted at the ledger's δ). With campaigns present,
``CAMPAIGN_SHARE`` = 45 % of ρ goes to the campaign tables, split over every campaign's
tables by ``CAMPAIGN_WEIGHTS``; ``PROFILE_SHARE`` = 10 % to the spend profile (tag and
category tables, equal parts); the rest goes to the marginals in proportion to the
workload's weights (2-way 1, 1-way 0.25: see :mod:`twins.workload`). Why so much to a few
campaign cells: the twins' marginals are already close at ε = 1 (fidelity benchmark), while
an offer's predicted profit moves one for one with a campaign's uptake, spend gap and cost.

Tag spend profile (``profile:<tag>:tag_cents`` / ``…:total_cents`` over the tag attribute):
per level (no, yes) of each life tag, the summed yearly spend on the tag's categories and the
summed total spend, each customer's total clamped to ``profile_clamp(merchant type)`` with
the tag part scaled alike (:func:`twins.features.tag_spend_sums`); the hub turns them into
the mean share of the tag's categories in a twin's spend (the schema only says whether it is
at least 3 %). Category spend profile (``profile:category:cents`` over ``category``, the
merchant type's categories): the same clamped yearly spend per category, summed over all
customers; the hub turns it into the owner's spend shares per category (how a tag's spend
splits between its categories, and the untagged categories between themselves).

Per campaign, the exposure counts are released over (arm, redeemed) only, four cells, and
window spend and discount cost per arm, two cells, so that the sums calibration needs
(uptake, spend gap between arms, discount cost) carry the noise of a few cells rather than of
hundreds; the spend gap is also released as one cell, treated total minus control total
(the hub combines both by their noise, :func:`twins.hub.response_table`); offers that give
no discount (``twins.schema.NO_COST_KINDS``: partner offers) release no cost table; the
redemption counts are also released per level of each response attribute (frequency, promo
share, tier), one table per attribute.

Sensitivities (privacy unit: one customer of this owner): each marginal L1 = L2 = 1 (one
feature row per customer); per campaign, counts 1, spend and the spend difference
``twins.outcomes.spend_clamp(merchant type)`` and discount cost ``COST_CLAMP_SEK[merchant
type]`` in cents (one exposure row per customer per campaign, amounts clamped, and a customer
is in one arm; :mod:`twins.outcomes`); each profile table ``profile_clamp(merchant type)`` in
cents (a customer's clamped spend lands in one cell of a tag table, and spreads over the
category vector with L1, hence L2, norm at most the clamp).

Measurement names (public, carry no identifier): ``marginal:<a>,<b>`` and
``campaign:<k>:<offer kind>:counts`` / ``…:spend_cents`` / ``…:spend_diff_cents`` /
``…:cost_cents`` / ``…:counts_by_<attribute>`` where ``k`` is the campaign's 1-based
position in the owner's campaign list (the owner's campaign ids are not released; they may
name the merchant).
Campaign tables run over the public pseudo-attributes ``arm`` (treatment, control) and
``redeemed`` (no, yes), the category profile over ``category``; all are added to the
release's domain.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from privacy.accounting import DpEvent, zcdp_rho_for_epsilon
from privacy.budget import LEDGER_FILE, PrivacyBudget
from privacy.ledger import Ledger
from privacy.release import CountQuery, Release, measure_and_release
from retail.load import load_merchant
from retail.merchant import Merchant
from retail.schema import ARMS, MERCHANT_TYPES
from twins.features import features, tag_spend_sums
from twins.outcomes import (
    DEFAULT_RESPONSE_ATTRIBUTES,
    campaign_outcomes,
    spend_clamp,
)
from twins.schema import CATEGORY_PROFILE, NO_COST_KINDS, SCHEMA, structural_constants
from twins.workload import MARGINAL_SENSITIVITY, Workload, default_workload, workload_counts
from twinsim.errors import BudgetExceeded

__all__ = [
    "CAMPAIGN_PREFIX",
    "CAMPAIGN_SHARE",
    "CAMPAIGN_WEIGHTS",
    "COST_CLAMP_SEK",
    "DEFAULT_COST_CLAMP_SEK",
    "MARGINAL_PREFIX",
    "PROFILE_CLAMP_SEK",
    "PROFILE_PREFIX",
    "PROFILE_SHARE",
    "REDEEMED_LEVELS",
    "OwnerQueries",
    "owner_feature_table",
    "owner_pseudonym",
    "owner_queries",
    "profile_clamp",
    "release_domain",
    "release_owner",
    "write_release",
]

CAMPAIGN_SHARE = 0.45
PROFILE_SHARE = 0.10
PROFILE_PREFIX = "profile:"
# a customer's yearly spend is clamped to this in the profile sums (public constants, near
# the 95th percentile of a year's spend at that kind of shop: clamping scales a customer's
# tag, category and total spend alike, so a share loses only some of its weighting toward
# heavy spenders, about 5 % of spend, while the noise falls with the clamp)
PROFILE_CLAMP_SEK: dict[str, float] = {"grocery": 15_000.0, "organic_deli": 7_000.0,
                                       "pet_shop": 10_000.0, "cafe": 4_000.0,
                                       "apparel": 25_000.0, "car_brand": 200_000.0,
                                       "music": 10_000.0}
DEFAULT_PROFILE_CLAMP_SEK = 50_000.0
# discount cost per customer and campaign is clamped per merchant type (public constants:
# a few times what a generous offer gives a heavy customer of that type in a month)
COST_CLAMP_SEK: dict[str, float] = {"grocery": 400.0, "organic_deli": 300.0, "pet_shop": 400.0,
                                    "cafe": 300.0, "apparel": 1_500.0, "car_brand": 3_000.0,
                                    "music": 300.0}
DEFAULT_COST_CLAMP_SEK = 1_000.0
# relative budget of a campaign's tables: the totals (one cell per arm x redeemed) carry what
# calibration needs most (uptake, spend gap, discount cost); the per-level counts shape it.
# The spend gap between the arms is released as one difference cell (spend_diff_cents: half
# the noise variance of the difference of two arm totals at the same budget); the arms'
# totals, which only correct for unequal arm sizes, get a small share.
CAMPAIGN_WEIGHTS = {"counts": 1.0, "spend_diff_cents": 1.35, "spend_cents": 0.15,
                    "cost_cents": 1.5, "counts_by": 0.5}

MARGINAL_PREFIX = "marginal:"
CAMPAIGN_PREFIX = "campaign:"
REDEEMED_LEVELS: tuple[str, ...] = ("no", "yes")


@dataclass(frozen=True, kw_only=True)
class OwnerQueries:
    """Pre-noise queries of one owner and their budget weights (owner side only)."""

    domain: dict[str, tuple[str, ...]]
    queries: tuple[CountQuery, ...]
    weights: tuple[float, ...]
    n_customers: int

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.queries) or not self.queries:
            raise ValueError(f"OwnerQueries.weights: {len(self.weights)} weights for "
                             f"{len(self.queries)} queries")


def release_domain(merchant_type: str | None = None) -> dict[str, tuple[str, ...]]:
    """The public domain of every release: the twin schema plus ``arm`` and ``redeemed``,
    and for a merchant type its ``category`` list (the category spend profile)."""
    dom = {a.name: a.levels for a in SCHEMA.attributes}
    dom["arm"] = tuple(ARMS)
    dom["redeemed"] = REDEEMED_LEVELS
    if merchant_type is not None:
        dom[CATEGORY_PROFILE] = tuple(MERCHANT_TYPES[merchant_type].categories)
    return dom


def _offer_kind(offer_json: str) -> str:
    try:
        kind = json.loads(offer_json).get("kind", "unknown")
    except (json.JSONDecodeError, AttributeError):
        return "unknown"
    return kind if isinstance(kind, str) and kind.isidentifier() else "unknown"


def _campaign_queries(merchant: Merchant, table: pl.DataFrame, share: float
                      ) -> tuple[list[CountQuery], list[float]]:
    mtype = merchant.info.merchant_type
    outcomes = campaign_outcomes(merchant.tables, table, spend_clamp_sek=spend_clamp(mtype),
                                 cost_clamp_sek=COST_CLAMP_SEK.get(mtype,
                                                                   DEFAULT_COST_CLAMP_SEK),
                                 attributes=DEFAULT_RESPONSE_ATTRIBUTES)
    kinds = dict(zip(merchant.campaigns["campaign_id"].to_list(),
                     map(_offer_kind, merchant.campaigns["offer"].to_list()), strict=True))
    queries: list[CountQuery] = []
    weights: list[float] = []
    totals = ("arm", "redeemed")
    for k, (cid, out) in enumerate(outcomes.items(), start=1):
        base = f"{CAMPAIGN_PREFIX}{k}:{kinds[cid]}:"
        sens = out.sensitivity
        assert out.cost_cents is not None
        # counts per (arm, redeemed); amounts per arm only (what calibration uses: fewer
        # cells, less noise in each arm's total), the spend gap also as one difference cell
        tables = [("counts", out.counts, totals, "counts"),
                  ("spend_cents", out.spend_cents, ("arm",), "spend_cents"),
                  ("spend_diff_cents", out.spend_cents, None, "spend_cents")]
        if kinds[cid] not in NO_COST_KINDS:
            tables.append(("cost_cents", out.cost_cents, ("arm",), "cost_cents"))
        for what, values, keep, unit in tables:
            attrs, cells = (out.marginal(values, keep) if keep is not None
                            else ((), out.arm_difference(values)))
            queries.append(CountQuery(name=base + what, attributes=attrs, counts=cells,
                                      sensitivity_l2=sens[unit]["l2"],
                                      sensitivity_l1=sens[unit]["l1"]))
            weights.append(CAMPAIGN_WEIGHTS[what])
        for attr in out.attributes:
            attrs, cells = out.marginal(out.counts, (*totals, attr))
            queries.append(CountQuery(name=f"{base}counts_by_{attr}", attributes=attrs,
                                      counts=cells, sensitivity_l2=sens["counts"]["l2"],
                                      sensitivity_l1=sens["counts"]["l1"]))
            weights.append(CAMPAIGN_WEIGHTS["counts_by"])
    total = math.fsum(weights)
    return queries, [share * w / total for w in weights]


def _profile_queries(sums: dict[str, tuple[Any, Any]], clamp_sek: float, share: float
                     ) -> tuple[list[CountQuery], list[float]]:
    """Per life tag: clamped tag-category spend and total spend per level of the tag; the
    clamped spend per category (one vector: a customer moves it by at most the clamp in L1,
    hence in L2, norm)."""
    sens = round(clamp_sek * 100)
    queries = [CountQuery(name=f"{PROFILE_PREFIX}{tag}:{what}", attributes=(tag,),
                          counts=values, sensitivity_l2=sens, sensitivity_l1=sens)
               for tag, (tag_cents, total_cents) in sums.items() if tag != CATEGORY_PROFILE
               for what, values in (("tag_cents", tag_cents), ("total_cents", total_cents))]
    if CATEGORY_PROFILE in sums:
        queries.append(CountQuery(name=f"{PROFILE_PREFIX}{CATEGORY_PROFILE}:cents",
                                  attributes=(CATEGORY_PROFILE,),
                                  counts=np.asarray(sums[CATEGORY_PROFILE][0], dtype=np.int64),
                                  sensitivity_l2=sens, sensitivity_l1=sens))
    return queries, [share / len(queries)] * len(queries) if queries else []


def owner_queries(merchant: Merchant, *, workload: Workload | None = None,
                  include_campaigns: bool = True, campaign_share: float = CAMPAIGN_SHARE,
                  feature_table: pl.DataFrame | None = None,
                  tag_sums: dict[str, tuple[Any, Any]] | None = None) -> OwnerQueries:
    """Every pre-noise query of a release and its weight (see the module doc for the split).

    ``tag_sums`` (:func:`twins.features.tag_spend_sums` at ``profile_clamp(merchant type)``)
    are computed from the merchant's transactions when not given."""
    if not 0.0 < campaign_share < 1.0:
        raise ValueError(f"campaign_share: must be in (0, 1), got {campaign_share}")
    mtype = merchant.info.merchant_type
    table = (feature_table if feature_table is not None
             else features(merchant.tables, mtype, merchant.info.period_end))
    wl = workload or default_workload(SCHEMA, constants=structural_constants(mtype))
    counts = workload_counts(table, SCHEMA, wl)
    marg = [CountQuery(name=MARGINAL_PREFIX + ",".join(c), attributes=tuple(c), counts=v,
                       sensitivity_l2=MARGINAL_SENSITIVITY["l2"],
                       sensitivity_l1=MARGINAL_SENSITIVITY["l1"])
            for c, v in zip(wl.cliques, counts, strict=True)]
    camp, camp_w = (_campaign_queries(merchant, table, campaign_share)
                    if include_campaigns else ([], []))
    if tag_sums is None:
        tag_sums = tag_spend_sums(merchant.tables, mtype, merchant.info.period_end, table,
                                  clamp_sek=profile_clamp(mtype))
    prof, prof_w = _profile_queries(tag_sums, profile_clamp(mtype), PROFILE_SHARE)
    marg_share = 1.0 - (campaign_share if camp else 0.0) - (PROFILE_SHARE if prof else 0.0)
    total_w = math.fsum(wl.weights)
    weights = [marg_share * w / total_w for w in wl.weights] + camp_w + prof_w
    return OwnerQueries(domain=release_domain(mtype), queries=tuple(marg + camp + prof),
                        weights=tuple(weights), n_customers=table.height)


def profile_clamp(merchant_type: str) -> float:
    """The clamp (SEK) of one customer's yearly spend in the tag profile sums."""
    return PROFILE_CLAMP_SEK.get(merchant_type, DEFAULT_PROFILE_CLAMP_SEK)


def owner_feature_table(owner_dir: str | Path, *, now: dt.datetime | dt.date | None = None
                        ) -> pl.DataFrame:
    """The owner's feature table (validated load; one row per consenting customer)."""
    merchant = load_merchant(owner_dir, now=now)
    return features(merchant.tables, merchant.info.merchant_type, merchant.info.period_end)


def owner_pseudonym(owner_dir: str | Path) -> str | None:
    """The pseudonym releases carry for this owner (None without a ledger)."""
    path = Path(owner_dir) / LEDGER_FILE
    return Ledger(path).pseudonym if path.is_file() else None


def _requested_rho(budget: PrivacyBudget, epsilon: float | None, rho: float | None) -> float:
    if (epsilon is None) == (rho is None):
        raise ValueError("give exactly one of epsilon or rho")
    if rho is not None:
        return float(rho)
    assert epsilon is not None
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon: must be a finite number > 0 (got {epsilon!r})")
    return zcdp_rho_for_epsilon(float(epsilon), budget.delta)


def _precheck(budget: PrivacyBudget, rho: float) -> None:
    """Refuse early (before the expensive load) with the ledger's figures."""
    check = budget.precheck(DpEvent(kind="gaussian", rho=rho))
    if check.allowed:
        return
    exc = BudgetExceeded(
        f"owner {budget.ledger.owner!r}: this release would bring spent ε from "
        f"{check.spent_epsilon:.9g} to {check.spent_after:.9g} (δ={budget.delta:g}), over the "
        f"cap {check.cap_epsilon:g}; remaining {budget.remaining:.9g}. Nothing was charged or "
        "written; ask for less or open a new period.",
        spent_epsilon=check.spent_epsilon, remaining_epsilon=budget.remaining,
        requested_epsilon=check.spent_after)
    raise exc


def write_release(release: Release, out: str | Path) -> Path:
    """Write ``release`` as JSON atomically: temp file in the same folder, then rename."""
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(release.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def release_owner(owner_dir: str | Path, *, epsilon: float | None = None,
                  rho: float | None = None, requester: str, purpose: str,
                  workload: Workload | None = None, include_campaigns: bool = True,
                  out: str | Path | None = None, ledger_path: str | Path | None = None,
                  now: dt.datetime | dt.date | None = None, **options: Any) -> Release:
    """Release one owner's DP marginals and campaign tables (see the module doc).

    ``epsilon`` is spent at the ledger's δ (zCDP converted by the ledger's own accountant);
    or give ``rho``. ``options`` go to :func:`owner_queries` (``campaign_share``).
    """
    budget = PrivacyBudget.for_owner(owner_dir, ledger_path=ledger_path)
    total_rho = _requested_rho(budget, epsilon, rho)
    if out is not None and not Path(out).parent.is_dir():
        raise ValueError(f"out: folder {Path(out).parent} does not exist; create it first")
    _precheck(budget, total_rho)
    merchant = load_merchant(owner_dir, now=now)
    table = options.pop("feature_table", None)  # a caller may hand in the same owner's table
    if table is None:
        table = features(merchant.tables, merchant.info.merchant_type, merchant.info.period_end)
    mtype = merchant.info.merchant_type
    tag_sums = tag_spend_sums(merchant.tables, mtype, merchant.info.period_end, table,
                              clamp_sek=profile_clamp(mtype))
    # Campaign tables need customers/campaigns/exposures only: free the transactions (GBs at
    # a large owner) before the remaining stages.
    merchant = dataclasses.replace(merchant, transactions=merchant.transactions.clear())
    gc.collect()
    plan = owner_queries(merchant, workload=workload, include_campaigns=include_campaigns,
                         feature_table=table, tag_sums=tag_sums, **options)
    release = measure_and_release(budget, requester=requester, purpose=purpose,
                                  domain=plan.domain, queries=plan.queries, rho=total_rho,
                                  weights=plan.weights, regions=merchant.info.regions)
    if out is not None:
        write_release(release, out)
    return release
