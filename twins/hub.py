"""Hub side: from ``Release`` objects to fitted models, cohorts, twins and response tables.

Everything here reads releases only (noisy counts + public metadata); nothing imports the
owner-side loaders or feature code (a test checks the imports).

* :func:`measurements_from_release` maps each released marginal back to a
  :class:`twins.workload.Measurement` with its noise variance (Gaussian: scale²; Laplace: the
  discrete Laplace variance).
* :func:`fit_release` fits a synthesiser to one release. Fitting the mixture takes tens of
  seconds, so fitted parameters are cached on disk (``TWINSIM_CACHE`` or
  ``~/.cache/twinsim``), keyed by the release's content hash, the synthesiser, its options
  and the seed. The cache holds public numbers only (they derive from the release).
* :class:`Cohort` selects owners (merchant types, regions) and customers (region, attribute
  filter); :func:`twins_from_releases` fits each owner separately and mixes owners in
  proportion to their DP-estimated cohort sizes (:func:`twins.synth.mix_twins`), refusing a
  cohort below ``min_size`` with ``CohortTooSmall``.
* :func:`response_table` exposes the released campaign tables as treated/control counts,
  redemptions and spend per campaign and attribute cell, with their noise variances.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from privacy.release import Measurement as Released
from privacy.release import Release
from retail.catalogue import base_spend_shares
from retail.schema import MERCHANT_TYPES, region_names
from twins.schema import (
    CATEGORY_PROFILE,
    CATEGORY_SHARE_PREFIX,
    LIFE_TAGS,
    NO_COST_KINDS,
    SCHEMA,
    TAG_SHARE_PREFIX,
    TOTAL_ATTRIBUTE,
    CohortFilter,
    structural_constants,
    structural_support,
)
from twins.synth import SYNTHESISERS, MixtureModel, get_synthesiser, mix_twins
from twins.synth.cohort import MIN_COHORT
from twins.workload import Measurement
from twinsim.errors import CohortTooSmall

__all__ = [
    "TAG_SHARE_PREFIX",
    "TOTAL_ATTRIBUTE",
    "Cohort",
    "CohortSize",
    "cache_dir",
    "category_profile",
    "estimate_cohort_size",
    "fit_release",
    "measurements_from_release",
    "model_from_state",
    "noise_variance",
    "read_release",
    "response_table",
    "tag_profile",
    "twins_from_releases",
]

_MARGINAL = "marginal:"
_CAMPAIGN = "campaign:"
_PROFILE = "profile:"


def read_release(path: str | Path) -> Release:
    """A release from its JSON file (schema version and content hash checked)."""
    p = Path(path)
    try:
        return Release.from_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{p}: not a readable twinsim release ({exc})") from None


def noise_variance(m: Released) -> float:
    """Variance of the noise on each cell of a released measurement."""
    if m.mechanism == "gaussian":
        return float(m.scale) ** 2  # discrete Gaussian: σ² to within e^{-2π²σ²}, σ ≥ 1
    if m.mechanism == "laplace":
        q = math.exp(-1.0 / float(m.scale))
        return 2.0 * q / (1.0 - q) ** 2  # discrete Laplace with parameter t = scale
    raise ValueError(f"measurement {m.name!r}: unknown mechanism {m.mechanism!r}")


def measurements_from_release(release: Release) -> list[Measurement]:
    """The released marginals over the twin schema, as synthesiser inputs."""
    out = [Measurement(clique=m.attributes, values=m.array().astype(float),
                       variance=noise_variance(m))
           for m in release.measurements
           if m.name.startswith(_MARGINAL) and all(a in SCHEMA for a in m.attributes)]
    if not out:
        raise ValueError(f"release {release.release_id}: no marginals over the twin schema")
    return out


def cache_dir(path: str | Path | None = None) -> Path:
    """Where fitted models are cached: ``path``, ``$TWINSIM_CACHE`` or ``~/.cache/twinsim``."""
    base = path or os.environ.get("TWINSIM_CACHE") or Path.home() / ".cache" / "twinsim"
    return Path(base) / "models"


def model_from_state(state: Mapping[str, Any]) -> MixtureModel:
    """Rebuild a fitted model from :meth:`MixtureModel.state` (the on-disk cache format)."""
    domain = SCHEMA.project(state["attributes"])
    return MixtureModel(domain=domain, weights=np.asarray(state["weights"], dtype=float),
                        probs=tuple(np.asarray(p, dtype=float) for p in state["probs"]),
                        total=float(state["total"]), name=str(state["name"]))


def _options(synthesiser: str, seed: int, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if synthesiser not in SYNTHESISERS:
        raise ValueError(f"synthesiser: unknown name {synthesiser!r}; known: "
                         f"{sorted(SYNTHESISERS)}")
    opts = dict(options or {})
    if "seed" in inspect.signature(SYNTHESISERS[synthesiser]).parameters:
        opts.setdefault("seed", seed)
    return opts


def fit_release(release: Release, synthesiser: str = "mixture", seed: int = 0, *,
                options: Mapping[str, Any] | None = None,
                cache: str | Path | None = None, use_cache: bool = True) -> MixtureModel:
    """Fit ``synthesiser`` to one release's marginals; cached by content hash and options."""
    opts = _options(synthesiser, seed, options)
    # Impossible levels for the merchant type (public, data-independent) get zero mass; the
    # "support" marker keeps models cached before this rule from being reused.
    support = structural_support(release.merchant_type)
    key_src = json.dumps({"release": release.content_hash, "synthesiser": synthesiser,
                          "options": opts, "support": 1}, sort_keys=True, default=str)
    path = cache_dir(cache) / f"{hashlib.sha256(key_src.encode()).hexdigest()[:32]}.json"
    if use_cache and path.is_file():
        try:
            return model_from_state(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # a corrupt cache entry is refitted, never trusted
    model = get_synthesiser(synthesiser, **opts).fit(
        measurements_from_release(release), SCHEMA,
        constants=structural_constants(release.merchant_type), support=support)
    if not isinstance(model, MixtureModel):  # the cache stores MixtureModel.state()
        raise TypeError(f"synthesiser {synthesiser!r} returned {type(model).__name__}, "
                        "not a MixtureModel")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(model.state()), encoding="utf-8")
        os.replace(tmp, path)
    return model


@dataclass(frozen=True, kw_only=True)
class Cohort:
    """Who to simulate: owners of ``merchant_types`` operating in ``regions``, and customers
    living in ``regions`` who satisfy ``where`` (e.g. ``"pet=yes, organic_share>=high"``).
    Empty means no restriction."""

    merchant_types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    where: str = ""

    def __post_init__(self) -> None:
        bad = [t for t in self.merchant_types if t not in MERCHANT_TYPES]
        if bad:
            raise ValueError(f"Cohort.merchant_types: unknown {bad}; known: "
                             f"{sorted(MERCHANT_TYPES)}")
        bad = [r for r in self.regions if r not in region_names()]
        if bad:
            raise ValueError(f"Cohort.regions: unknown {bad}; known: {list(region_names())}")
        self.filter()  # parse now: a bad expression fails at construction

    def filter(self) -> CohortFilter | None:
        clauses = [c for c in self.where.split(",") if c.strip()]
        if self.regions:
            clauses.append("region=" + "|".join(self.regions))
        return CohortFilter.parse(clauses) if clauses else None

    def admits(self, release: Release) -> bool:
        """Does this release's owner belong to the cohort (by public metadata)?"""
        if self.merchant_types and release.merchant_type not in self.merchant_types:
            return False
        return not self.regions or bool(set(self.regions) & set(release.regions))

    def describe(self) -> str:
        parts = [f"merchant types {'|'.join(self.merchant_types)}"] if self.merchant_types else []
        parts += [f"regions {'|'.join(self.regions)}"] if self.regions else []
        parts += [self.where.strip()] if self.where.strip() else []
        return "; ".join(parts) or "everyone"


@dataclass(frozen=True, kw_only=True)
class CohortSize:
    """DP-estimated cohort size, per owner pseudonym and in total."""

    by_owner: Mapping[str, float]
    total: float


def _models(releases: Sequence[Release], cohort: Cohort, fit: Mapping[str, Any]
            ) -> tuple[dict[str, MixtureModel], dict[str, str]]:
    chosen = [r for r in releases if cohort.admits(r)]
    if not chosen:
        raise CohortTooSmall(f"cohort ({cohort.describe()}): no release matches its merchant "
                             f"types/regions among {len(releases)} release(s); estimated size 0")
    owners = [r.owner for r in chosen]
    dup = sorted({o for o in owners if owners.count(o) > 1})
    if dup:
        raise ValueError(f"releases: several releases of owner(s) {dup}; pass one per owner")
    return ({r.owner: fit_release(r, **fit) for r in chosen},
            {r.owner: r.merchant_type for r in chosen})


def estimate_cohort_size(releases: Sequence[Release], cohort: Cohort | None = None,
                         **fit: Any) -> CohortSize:
    """DP-estimated size of the cohort at each admitted owner (model share × DP total).

    ``fit`` goes to :func:`fit_release` (synthesiser, seed, options, cache).
    """
    cohort = cohort or Cohort()
    models, _ = _models(releases, cohort, fit)
    where = cohort.filter()
    sizes = {o: m.size(where) for o, m in models.items()}
    return CohortSize(by_owner=sizes, total=math.fsum(sizes.values()))


def twins_from_releases(releases: Sequence[Release], *, n: int, seed: int,
                        cohort: Cohort | None = None, min_size: float = MIN_COHORT,
                        **fit: Any) -> pl.DataFrame:
    """``n`` twins of the cohort: UInt8 attribute codes plus ``owner`` and ``merchant_type``.

    Owners are mixed in proportion to their DP-estimated cohort sizes. Deterministic for a
    fixed ``seed`` and fitted models. ``CohortTooSmall`` when the estimated size (summed
    over owners) is below ``min_size``. ``fit`` goes to :func:`fit_release`.
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    cohort = cohort or Cohort()
    models, types = _models(releases, cohort, fit)
    where = cohort.filter()
    try:
        twins = mix_twins(models, n, seed, where, min_size=min_size)
    except CohortTooSmall as exc:
        raise CohortTooSmall(f"cohort ({cohort.describe()}): {exc}") from None
    twins = twins.with_columns(
        pl.col("owner").replace_strict(types, return_dtype=pl.String).alias("merchant_type"))
    return _with_category_shares(_with_tag_shares(twins, releases, seed), releases)


_YES_SPREAD = 0.6  # a "yes" twin's share is uniform within ±60 % of the released mean


# public prior of a tag's spend share per level (no, yes): mean and sd (the schema's "yes"
# means >= 3 % of spend); a noisy released share is combined with it by precision
_SHARE_PRIOR = ((0.0125, 0.01), (0.18, 0.08))


def tag_profile(release: Release) -> dict[str, tuple[float, float]]:
    """Mean spend share of each life tag's categories among the owner's customers whose tag
    is no / yes, from the release's ``profile:`` sums: the ratio of the noisy sums, combined
    with a public prior by precision (delta-method noise variance of the ratio), so a small
    or very noisy owner stays near the prior. Tags without profile sums are left out."""
    parts: dict[str, dict[str, Released]] = {}
    for m in release.measurements:
        if m.name.startswith(_PROFILE):
            _, tag, what = m.name.split(":")
            parts.setdefault(tag, {})[what] = m
    out = {}
    for tag, p in parts.items():
        if not {"tag_cents", "total_cents"} <= set(p):
            continue
        s, t = p["tag_cents"].array().astype(float), p["total_cents"].array().astype(float)
        v_s, v_t = noise_variance(p["tag_cents"]), noise_variance(p["total_cents"])
        shares = []
        for lv, (mu, sd) in enumerate(_SHARE_PRIOR):
            if t[lv] <= 0:
                shares.append(mu)
                continue
            r = float(np.clip(s[lv] / t[lv], 0.0, 1.0))
            var = (v_s + r * r * v_t) / t[lv] ** 2
            if var == 0:
                shares.append(r)
                continue
            w = (1.0 / var) / (1.0 / var + 1.0 / sd ** 2)
            shares.append(float(w * r + (1 - w) * mu))
        out[tag] = (shares[0], shares[1])
    return out


CATEGORY_PRIOR_REL = 0.5  # sd of a category's public default spend share, relative to it


def category_profile(release: Release) -> np.ndarray | None:
    """The owner's spend share per category of its merchant type, from the release's
    ``profile:category:cents`` sums: each share's ratio to the noisy total, combined with the
    public default (:func:`retail.catalogue.base_spend_shares`, sd ``CATEGORY_PRIOR_REL`` of
    itself) by precision (delta-method noise variance of the ratio), renormalised. None
    when the release has no category profile (older releases)."""
    m = next((m for m in release.measurements
              if m.name == f"{_PROFILE}{CATEGORY_PROFILE}:cents"), None)
    if m is None:
        return None
    sums = np.maximum(m.array().astype(float), 0.0)
    prior = base_spend_shares(release.merchant_type)
    if sums.size != prior.size:
        raise ValueError(f"release of {release.owner}: category profile has {sums.size} "
                         f"cells, a {release.merchant_type} has {prior.size} categories")
    total = float(sums.sum())
    if total <= 0:
        return prior
    r = sums / total
    v = noise_variance(m)
    var = (v + r * r * v * sums.size) / total ** 2
    prec_prior = 1.0 / (CATEGORY_PRIOR_REL * prior + 1e-4) ** 2
    w = np.where(var > 0, (1.0 / np.maximum(var, 1e-300)) / (1.0 / np.maximum(var, 1e-300)
                                                              + prec_prior), 1.0)
    out = w * r + (1 - w) * prior
    return out / out.sum()


def _with_category_shares(twins: pl.DataFrame, releases: Sequence[Release]) -> pl.DataFrame:
    """Add ``catshare_<category>`` per category of the releases' merchant types: the twin's
    owner's released category profile (:func:`category_profile`); null where the owner
    released none or its merchant type has no such category."""
    owner = twins["owner"].to_numpy()
    cats = sorted({c for r in releases for c in MERCHANT_TYPES[r.merchant_type].categories})
    cols = {c: np.full(twins.height, np.nan) for c in cats}
    for r in releases:
        prof = category_profile(r)
        if prof is None:
            continue
        rows = owner == r.owner
        for c, share in zip(MERCHANT_TYPES[r.merchant_type].categories, prof, strict=True):
            cols[c][rows] = share
    return twins.with_columns(pl.Series(CATEGORY_SHARE_PREFIX + c, v, dtype=pl.Float32)
                              .fill_nan(None) for c, v in cols.items())


def _with_tag_shares(twins: pl.DataFrame, releases: Sequence[Release], seed: int
                     ) -> pl.DataFrame:
    """Add ``share_<tag>`` for every life tag per twin, drawn around its owner's released tag
    profile within its tag level ("yes": at least 3 % of spend, "no": below); null where the
    owner's release has no profile for the tag (the simulation then uses its public
    default)."""
    profiles = {r.owner: tag_profile(r) for r in releases}
    tags = LIFE_TAGS  # every tag, so twins of different calls stack (null: not released)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A65]))
    owner = twins["owner"].to_numpy()
    cols = []
    for tag in tags:
        share = np.full(twins.height, np.nan)
        level = twins[tag].to_numpy().astype(np.int64) if tag in twins.columns else None
        u = rng.random(twins.height)
        for own, prof in profiles.items():
            if tag not in prof or level is None:
                continue
            m_no, m_yes = prof[tag]
            rows = owner == own
            yes = rows & (level == 1)
            no = rows & (level == 0)
            lo, hi = max(0.03, m_yes * (1 - _YES_SPREAD)), max(0.03, m_yes * (1 + _YES_SPREAD))
            share[yes] = np.minimum(lo + (hi - lo) * u[yes], 0.95)
            share[no] = np.minimum(2.0 * m_no * u[no], 0.03)
        cols.append(pl.Series(TAG_SHARE_PREFIX + tag, share, dtype=pl.Float32)
                    .fill_nan(None))
    return twins.with_columns(cols)


def _campaign_parts(release: Release) -> dict[tuple[int, str], dict[str, Released]]:
    parts: dict[tuple[int, str], dict[str, Released]] = {}
    for m in release.measurements:
        if m.name.startswith(_CAMPAIGN):
            _, k, kind, what = m.name.split(":")
            parts.setdefault((int(k), kind), {})[what] = m
    return parts


_RESPONSE_COLUMNS = ("n_treated", "n_control", "redeemed_treated", "redeemed_control",
                     "spend_treated_cents", "spend_control_cents", "cost_treated_cents",
                     "cost_control_cents")


def _combine(estimates: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Inverse-variance mean of independent (value, noise variance) estimates of one
    quantity, and its variance; an exact one (variance 0) wins."""
    exact = [v for v, var in estimates if var <= 0]
    if exact:
        return float(exact[0]), 0.0
    w = np.array([1.0 / var for _, var in estimates])
    x = np.array([v for v, _ in estimates], dtype=float)
    return float(w @ x / w.sum()), float(1.0 / w.sum())


def _with_difference(s_t: float, s_c: float, var_arm: float, diff: float, var_diff: float
                     ) -> tuple[float, float, float, float]:
    """The arms' totals given also their released difference: the least-squares estimate
    (treated, control, variance of each, their covariance). The sum of the arms comes from
    the arm cells alone, their difference from both the arm cells and the difference cell."""
    d, var_d = _combine([(s_t - s_c, 2.0 * var_arm), (diff, var_diff)])
    total, var_total = s_t + s_c, 2.0 * var_arm
    return ((total + d) / 2, (total - d) / 2, (var_total + var_d) / 4,
            (var_total - var_d) / 4)


def _campaign_frame(release: Release, k: int, kind: str, parts: Mapping[str, Released]
                    ) -> pl.DataFrame | None:
    """Total and per-level rows of one campaign (both release layouts, see response_table)."""
    if "counts" not in parts or "spend_cents" not in parts:
        return None
    dom = release.domain

    def arr(m: Released) -> np.ndarray:
        return m.array().reshape([len(dom[a]) for a in m.attributes]).astype(float)

    counts = arr(parts["counts"])
    vc = noise_variance(parts["counts"])
    # cells summed into one arm's total (redeemed x further attributes) / into one redeemed
    per_arm = int(np.prod(counts.shape[1:]))
    per_red = per_arm // 2
    extra = parts["counts"].attributes[2:]

    def arm_sums(what: str) -> tuple[float | None, float | None, float | None]:
        """(treated sum, control sum, noise variance of one) of an amount table, whatever
        axes follow ``arm`` (none in the current layout)."""
        if what not in parts:
            return None, None, None
        a = arr(parts[what])
        a = a.reshape(a.shape[0], -1)
        return float(a[0].sum()), float(a[1].sum()), a.shape[1] * noise_variance(parts[what])

    c2 = counts.reshape(2, 2, -1).sum(axis=2)
    s_t, s_c, v_s = arm_sums("spend_cents")
    cov_s = 0.0
    if "spend_diff_cents" in parts and s_t is not None and s_c is not None and v_s is not None:
        s_t, s_c, v_s, cov_s = _with_difference(
            s_t, s_c, v_s, float(parts["spend_diff_cents"].array()[0]),
            noise_variance(parts["spend_diff_cents"]))
    k_t, k_c, v_k = arm_sums("cost_cents")
    if "cost_cents" not in parts and kind in NO_COST_KINDS:  # gives no discount: costs 0
        k_t, k_c, v_k = 0.0, 0.0, 0.0
    by_level = [(m.attributes[2], arr(m), noise_variance(m))
                for what, m in sorted(parts.items()) if what.startswith("counts_by_")]
    # every counts_by table sums to the same arm totals: combine them with the totals' own
    # cells by their noise (independent measurements of the same counts)
    n_t, var_nt = _combine([(c2[0].sum(), per_arm * vc)]
                           + [(t[0].sum(), t[0].size * v) for _, t, v in by_level])
    n_c, _ = _combine([(c2[1].sum(), per_arm * vc)]
                      + [(t[1].sum(), t[1].size * v) for _, t, v in by_level])
    red_t, var_red = _combine([(c2[0, 1], per_red * vc)]
                              + [(t[0, 1].sum(), t.shape[2] * v) for _, t, v in by_level])
    rows: list[dict[str, Any]] = [{
        "attribute": TOTAL_ATTRIBUTE, "level": 0,
        "n_treated": n_t, "n_control": n_c, "redeemed_treated": red_t,
        "redeemed_control": c2[1, 1], "spend_treated_cents": s_t, "spend_control_cents": s_c,
        "cost_treated_cents": k_t, "cost_control_cents": k_c, "var_n": var_nt,
        "var_redeemed": var_red, "var_spend_cents": v_s, "cov_spend_cents": cov_s,
        "var_cost_cents": v_k}]
    levels: list[tuple[str, np.ndarray, float]] = []
    for i, attr in enumerate(extra):  # the older layout: attributes inside the totals
        others = tuple(2 + j for j in range(len(extra)) if j != i)
        n_other = int(np.prod([counts.shape[a] for a in others]))
        levels.append((attr, counts.sum(axis=others), n_other * vc))
    levels += by_level
    for attr, tab, var in levels:
        card = tab.shape[2]
        for lv in range(card):
            rows.append({"attribute": attr, "level": lv, "n_treated": tab[0, :, lv].sum(),
                         "n_control": tab[1, :, lv].sum(), "redeemed_treated": tab[0, 1, lv],
                         "redeemed_control": tab[1, 1, lv], "var_n": 2 * var,
                         "var_redeemed": var})
    frame = pl.DataFrame(rows, schema={
        "attribute": pl.String, "level": pl.Int64, **{c: pl.Float64 for c in _RESPONSE_COLUMNS},
        "var_n": pl.Float64, "var_redeemed": pl.Float64, "var_spend_cents": pl.Float64,
        "cov_spend_cents": pl.Float64, "var_cost_cents": pl.Float64})
    return frame.select(pl.lit(release.owner).alias("owner"),
                        pl.lit(release.merchant_type).alias("merchant_type"),
                        pl.lit(k).alias("campaign"), pl.lit(kind).alias("offer_kind"),
                        pl.all())


def response_table(releases: Sequence[Release]) -> pl.DataFrame:
    """DP campaign responses per (owner, campaign, offer kind), in long form.

    One row per campaign with ``attribute == "all"`` holds its totals: ``n_treated``/
    ``n_control`` (exposed customers), ``redeemed_treated``/``redeemed_control``,
    ``spend_treated_cents``/``spend_control_cents`` (window spend clamped per customer) and
    ``cost_treated_cents``/``cost_control_cents`` (discount cost clamped per customer; null
    in releases made before cost was released). Amount tables are read over whatever axes
    follow ``arm`` (none in the current layout). Then one row per level of each response
    attribute (``attribute``, ``level`` = code) with counts and redemptions only. Each row
    carries the noise variance of its columns (``var_n``, ``var_redeemed``, and for one
    arm's total ``var_spend_cents``, ``var_cost_cents``). Both release layouts are read:
    totals (counts per arm x redeemed, amounts per arm) plus ``counts_by_<attribute>``
    tables (current), or counts and spend over (arm, redeemed, attributes...) summed here
    (earlier releases). Values are noisy
    and may be negative; aggregate before dividing.
    """
    frames = [f for r in releases for (k, kind), parts in sorted(_campaign_parts(r).items())
              if (f := _campaign_frame(r, k, kind, parts)) is not None]
    if not frames:
        raise ValueError("response_table: no campaign tables in the given releases")
    return pl.concat(frames, how="vertical")
