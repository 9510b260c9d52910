"""Behaviour parameters of twins: one struct of arrays, one entry per twin.

:class:`TwinParams` is what both engines simulate. It is built from the public twin attribute
table (codes of ``twins.schema.SCHEMA``) by :func:`params_from_twins`, which maps every level
to behaviour through the level's public representative (frequency → daily visit rate, basket
value → mean basket, volatility → CV, ...) plus seeded within-level jitter, so two twins of the
same levels are alike but not identical. Nothing here reads raw data.

Conventions: simulation day 0 is a Monday (weekday index ``day % 7``, 5 and 6 are the weekend);
"spend shares" are shares of basket value, not of item counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import polars as pl

from retail.catalogue import base_spend_shares
from retail.schema import MERCHANT_TYPES, TIERS
from simulation.rates import fit_frequency_prior, latent_rates
from twins.schema import (
    CATEGORY_SHARE_PREFIX,
    LIFE_TAGS,
    SCHEMA,
    TAG_SHARE_PREFIX,
    Attribute,
    plausible_basket_max,
    structural_support,
)

__all__ = ["TwinParams", "base_spend_shares", "params_from_twins"]  # base_spend_shares: re-export

F32 = np.float32
_PER_TWIN = ("visit_rate", "rhythm_amp", "rhythm_phase", "churn_hazard", "basket_mean",
             "basket_cv", "items", "organic_p", "promo_prone", "price_sens")
# Tier mix by preferred tier (budget, standard, premium); jittered per twin.
_TIER_MIX = np.array([[0.70, 0.25, 0.05], [0.15, 0.70, 0.15], [0.05, 0.25, 0.70]])
# Item-frequency profile of a typical basket per merchant type (spend shares follow via price).
@dataclass(frozen=True, kw_only=True, eq=False)
class TwinParams:
    """Per-twin behaviour parameters (float32 arrays of length ``n`` unless noted).

    visit_rate: daily purchase probability on an average day; weekday: (n, 7) multipliers
    with mean 1; rhythm_amp / rhythm_phase: two-week rhythm ``1 + amp·cos(2π(day−phase)/14)``;
    churn_hazard: daily probability of leaving for good; basket_mean (SEK) and basket_cv:
    lognormal spend per purchase day; items: items per basket; category_w: (n, C) spend shares;
    tier_p: (n, 3) spend shares over tiers; organic_p: organic share of spend; promo_prone and
    price_sens in [0, 1]; region: index into ``retail.schema.REGIONS``; days_since_visit and
    active: the state at the end of the observed period, from which a simulation continues.
    ``attributes`` is the public twin table (level codes) used for targeting and segments.
    """

    merchant_type: str
    visit_rate: np.ndarray
    weekday: np.ndarray
    rhythm_amp: np.ndarray
    rhythm_phase: np.ndarray
    churn_hazard: np.ndarray
    basket_mean: np.ndarray
    basket_cv: np.ndarray
    items: np.ndarray
    category_w: np.ndarray
    tier_p: np.ndarray
    organic_p: np.ndarray
    promo_prone: np.ndarray
    price_sens: np.ndarray
    region: np.ndarray
    days_since_visit: np.ndarray
    active: np.ndarray
    attributes: pl.DataFrame | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.merchant_type not in MERCHANT_TYPES:
            raise ValueError(f"TwinParams.merchant_type: unknown {self.merchant_type!r}; "
                             f"known: {sorted(MERCHANT_TYPES)}")
        n = len(self.visit_rate)
        n_cat = len(MERCHANT_TYPES[self.merchant_type].categories)
        shapes = {"weekday": (n, 7), "category_w": (n, n_cat), "tier_p": (n, len(TIERS))}
        for f in fields(self):
            if f.name in ("merchant_type", "attributes"):
                continue
            arr = getattr(self, f.name)
            want = shapes.get(f.name, (n,))
            if not isinstance(arr, np.ndarray) or arr.shape != want:
                got = getattr(arr, "shape", type(arr).__name__)
                raise ValueError(f"TwinParams.{f.name}: expected an array of shape {want}, "
                                 f"got {got}")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise ValueError(f"TwinParams.{f.name}: contains non-finite values")
        self._check_ranges()
        if self.attributes is not None and self.attributes.height != n:
            raise ValueError(f"TwinParams.attributes: {self.attributes.height} rows for {n} twins")

    def _check_ranges(self) -> None:
        for name, lo, hi in (("visit_rate", 0, 1), ("churn_hazard", 0, 1), ("organic_p", 0, 1),
                             ("promo_prone", 0, 1), ("price_sens", 0, 1), ("rhythm_amp", 0, 1)):
            arr = getattr(self, name)
            if arr.size and (arr.min() < lo or arr.max() > hi):
                bad = arr[(arr < lo) | (arr > hi)][0]
                raise ValueError(f"TwinParams.{name}: values must lie in [{lo}, {hi}], got {bad}")
        for name in ("basket_mean", "items"):
            arr = getattr(self, name)
            if arr.size and arr.min() <= 0:
                raise ValueError(f"TwinParams.{name}: must be > 0, got {arr.min()}")
        if self.basket_cv.size and self.basket_cv.min() < 0:
            raise ValueError(f"TwinParams.basket_cv: must be >= 0, got {self.basket_cv.min()}")

    @property
    def n(self) -> int:
        return len(self.visit_rate)

    @property
    def categories(self) -> tuple[str, ...]:
        return MERCHANT_TYPES[self.merchant_type].categories

    def subset(self, index: np.ndarray | slice) -> TwinParams:
        """The twins at ``index`` (integer array, boolean mask or slice), as new TwinParams."""
        idx = np.arange(self.n)[index]
        kw: dict[str, object] = {f.name: getattr(self, f.name)[idx] for f in fields(self)
                                 if f.name not in ("merchant_type", "attributes")}
        attrs = None if self.attributes is None else self.attributes[idx]
        return TwinParams(merchant_type=self.merchant_type, attributes=attrs, **kw)  # type: ignore[arg-type]

    @classmethod
    def synthetic(cls, n: int, merchant_type: str = "grocery", seed: int = 0) -> TwinParams:
        """Plausible twins without any release: a persona-driven synthetic attribute table
        (with an extra ``persona`` column for segments) mapped through :func:`params_from_twins`.
        For tests, benchmarks and demos."""
        from simulation.synthetic import synthetic_twins

        table = synthetic_twins(n, merchant_type, seed=seed)
        return params_from_twins(table, merchant_type, seed=seed)


def _codes(table: pl.DataFrame, name: str, default: int) -> np.ndarray:
    if name in table.columns:
        codes = table[name].to_numpy().astype(np.int64)
        card = SCHEMA[name].cardinality
        if codes.size and (codes.min() < 0 or codes.max() >= card):
            raise ValueError(f"twin table column {name!r}: code {codes.max()} outside "
                             f"0..{card - 1}")
        return codes
    return np.full(table.height, default, dtype=np.int64)


# Money/item amounts binned on a geometric grid with wide, skewed bins. Inside a bin the draw
# follows a power law x^(k-1) (log-density linear in log x, slope k) whose slope comes from the
# level counts of the twin table itself (public: a function of the twins only), so bins above
# the mode lean towards their lower edge as the data does; k = 0 is log-uniform. Frequency
# stays uniform: its mass sits near the mode, where density is flat.
_LOG_SCALE = frozenset({"basket_value", "basket_size"})
_MIN_TWINS_FOR_SLOPE = 200  # below this the level counts are too thin to shape bins
_MIN_SPAN_DAYS = 28  # as twins.features: a frequency is measured over at least four weeks
_MAX_SLOPE = 5.0


def _bounds(attr: Attribute, cap: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper value of every binned level (open end bins mirror the representative;
    ``cap`` bounds the top of the bin containing it)."""
    reps = np.asarray(attr.representatives, dtype=float)
    e = np.asarray(attr.edges, dtype=float)
    nb = len(e) + 1
    lo = np.concatenate([[max(0.0, 2 * reps[attr.offset] - e[0])], e])
    hi = np.concatenate([e, [2 * reps[attr.offset + nb - 1] - e[-1]]])
    if cap is not None:
        hi = np.where(lo < cap, np.minimum(hi, cap), hi)
    return lo, hi


def _log_slopes(bins: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per bin, the slope of log-density in log x from the neighbouring bins' twin counts
    (central difference; a bin starting at 0 counts as spanning one octave below its top)."""
    k = np.zeros(lo.size)
    if bins.size < _MIN_TWINS_FOR_SLOPE or lo.size < 3:
        return k
    low = np.where(lo > 0, lo, hi / 2)
    width = np.log(hi / low)
    centre = np.log(low) + width / 2
    dens = np.log((np.bincount(bins, minlength=lo.size) + 0.5) / width)
    left, right = np.maximum(np.arange(lo.size) - 1, 0), np.minimum(np.arange(lo.size) + 1,
                                                                     lo.size - 1)
    k = (dens[right] - dens[left]) / (centre[right] - centre[left])
    return np.clip(k, -_MAX_SLOPE, _MAX_SLOPE)


def _within_level(attr: Attribute, codes: np.ndarray, rng: np.random.Generator,
                  cap: float | None = None) -> np.ndarray:
    """A value inside each level's bin: uniform, or for ``_LOG_SCALE`` attributes (bins
    starting above 0) the power law of :func:`_log_slopes`; ``cap`` bounds the top."""
    reps = np.asarray(attr.representatives, dtype=float)
    if attr.edges is None:
        return reps[codes]
    lo, hi = _bounds(attr, cap)
    b = np.clip(codes - attr.offset, 0, lo.size - 1)
    u = rng.random(codes.size)
    val = lo[b] + u * (hi[b] - lo[b])
    if attr.name in _LOG_SCALE:
        pos = lo[b] > 0
        safe_lo = np.where(lo > 0, lo, 1.0)
        w = np.log(hi / safe_lo)[b]
        kw = (_log_slopes(b, lo, hi)[b] * w)
        flat = np.abs(kw) < 1e-6
        # inverse CDF of density ∝ exp(k·t) on t in [0, w], t = log(x / lo)
        t = np.where(flat, u * w, np.log1p(u * np.expm1(kw)) * w / np.where(flat, 1.0, kw))
        val = np.where(pos, safe_lo[b] * np.exp(np.minimum(t, w)), val)
    if attr.null_level is not None:
        val = np.where(codes == 0, reps[0], val)
    return val


def _supported(codes: dict[str, np.ndarray], merchant_type: str) -> dict[str, np.ndarray]:
    """Move levels the merchant type cannot have (public structural zeros, e.g. a 60k SEK
    café basket) to the nearest allowed level: a defence against noisy releases."""
    out = dict(codes)
    for name, allowed in structural_support(merchant_type).items():
        if name not in out or not allowed:
            continue
        ok = np.array(sorted(allowed))
        c = out[name]
        nearest = ok[np.abs(c[:, None] - ok[None, :]).argmin(axis=1)]
        out[name] = np.where(np.isin(c, ok), c, nearest)
    return out


def params_from_twins(twins_df: pl.DataFrame, merchant_type: str, *, seed: int) -> TwinParams:
    """Behaviour parameters from a twin attribute table (UInt8 level codes of ``SCHEMA``).

    Missing attribute columns take a neutral level (spread weekdays, irregular rhythm,
    medium volatility, standard tier, no life tags). Other columns (``owner``, ``persona``)
    pass through in ``attributes`` and can serve as segments.
    """
    if merchant_type not in MERCHANT_TYPES:
        raise ValueError(f"merchant_type: unknown {merchant_type!r}; known: "
                         f"{sorted(MERCHANT_TYPES)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A1]))
    n = twins_df.height
    c = _supported({a.name: _codes(twins_df, a.name, d) for a, d in _defaults()}, merchant_type)
    caps = {"basket_value": plausible_basket_max(merchant_type)}
    val = {name: _within_level(SCHEMA[name], c[name], rng, caps.get(name))
           for name in ("frequency", "basket_value", "basket_size", "volatility",
                        "organic_share", "promo_share", "tenure", "weekday_pattern")}
    visit_rate = np.clip(_visit_rates(c, val, rng), 1e-4, 0.95)
    val["recency"] = _recency(c["recency"], visit_rate, rng)
    weekday = _weekday(val["weekday_pattern"], c["rhythm"], rng)
    amp, phase = _rhythm(c["rhythm"], rng)
    hazard = _hazard(val["tenure"])
    active = _alive(visit_rate, hazard, val["recency"], rng)
    tier_p = _TIER_MIX[c["tier"]] * rng.lognormal(0.0, 0.25, size=(n, 3))
    tier_p /= tier_p.sum(axis=1, keepdims=True)
    promo = np.clip(val["promo_share"] / 0.6, 0.0, 1.0)
    price_sens = np.clip(0.5 * np.array([0.9, 0.5, 0.15])[c["tier"]] + 0.5 * promo, 0.0, 1.0)
    return TwinParams(
        merchant_type=merchant_type, visit_rate=visit_rate.astype(F32), weekday=weekday,
        rhythm_amp=amp, rhythm_phase=phase, churn_hazard=hazard.astype(F32),
        basket_mean=np.maximum(val["basket_value"], 1.0).astype(F32),
        basket_cv=val["volatility"].astype(F32), items=np.maximum(val["basket_size"], 1.0)
        .astype(F32), category_w=_category_weights(merchant_type, c, rng,
                                                    _tag_shares(twins_df),
                                                    _released_categories(twins_df,
                                                                         merchant_type)),
        tier_p=tier_p.astype(F32), organic_p=np.clip(val["organic_share"], 0, 1).astype(F32),
        promo_prone=promo.astype(F32), price_sens=price_sens.astype(F32),
        region=c["region"].astype(np.int8),
        days_since_visit=val["recency"].astype(np.int32), active=active,
        attributes=twins_df)


def _visit_rates(codes: dict[str, np.ndarray], val: dict[str, np.ndarray],
                 rng: np.random.Generator) -> np.ndarray:
    """Daily visit rates: each twin's latent rate given its observed frequency (regression
    to the mean, :mod:`simulation.rates`), under a prior fitted to the frequency levels of
    the twins seen for at least a year; the observed rate itself when the twins are too
    few, or spread over too few levels, to fit one."""
    freq, tenure = codes["frequency"], codes["tenure"]
    edges = SCHEMA["frequency"].edges
    assert edges is not None
    full_year = tenure >= SCHEMA["tenure"].code("1_2y")
    counts = np.bincount(freq[full_year], minlength=len(edges) + 1)
    if counts.sum() < _MIN_TWINS_FOR_SLOPE or np.count_nonzero(counts) < 3:
        return val["frequency"] / 30.0
    prior = fit_frequency_prior(counts, tuple(edges))
    span = np.clip(val["tenure"] * 365.25, _MIN_SPAN_DAYS, 365.0)
    return latent_rates(val["frequency"], span, prior, rng)


def _defaults() -> list[tuple[Attribute, int]]:
    neutral = {"weekday_pattern": 1, "rhythm": 2, "volatility": 1, "tier": 1, "frequency": 2,
               "recency": 2, "basket_value": 3, "basket_size": 2, "tenure": 3,
               "organic_share": 1, "promo_share": 1, "channel": 0, "vehicle_age": 0}
    return [(a, neutral.get(a.name, 0)) for a in SCHEMA.attributes]


def _weekday(weekend_share: np.ndarray, rhythm: np.ndarray, rng: np.random.Generator
             ) -> np.ndarray:
    s = np.clip(weekend_share, 0.01, 0.95)[:, None]
    w = np.where(np.arange(7) >= 5, 7 * s / 2, 7 * (1 - s) / 5)
    weekly = rhythm == SCHEMA["rhythm"].code("weekly")
    if weekly.any():  # a weekly shopper keeps a favourite day
        fav = np.where(weekly)[0], rng.integers(0, 7, size=int(weekly.sum()))
        w[fav] *= 3.0
    w *= rng.lognormal(0.0, 0.1, size=w.shape)
    return (w / w.mean(axis=1, keepdims=True)).astype(F32)


def _rhythm(rhythm: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    two_week = rhythm == SCHEMA["rhythm"].code("two_week")
    amp = np.where(two_week, rng.uniform(0.4, 0.85, rhythm.size), 0.0)
    phase = rng.integers(0, 14, size=rhythm.size).astype(float)
    return amp.astype(F32), phase.astype(F32)


def _hazard(tenure_years: np.ndarray) -> np.ndarray:
    # Yearly churn falls with tenure: 40% for new customers, ~10% after eight years.
    yearly = 0.4 / (1.0 + 0.4 * tenure_years)
    return -np.log1p(-yearly) / 365.0


def _recency(codes: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Whole days since the last purchase inside each recency bin, as a shopper of this rate
    would show them: geometric (floor of an exponential, λ = −ln(1−rate)) truncated to the bin.
    Uniform draws would make a daily shopper of level lt_7d silent for ~3.5 days, which
    :func:`_alive` reads as a lost customer."""
    attr = SCHEMA["recency"]
    reps = np.asarray(attr.representatives, dtype=float)
    e = np.asarray(attr.edges, dtype=float)
    lo = np.concatenate([[0.0], e])
    hi = np.concatenate([e, [max(2 * reps[-1] - e[-1], e[-1] + 1)]])
    b = np.clip(codes - attr.offset, 0, len(e))
    lam = -np.log1p(-np.minimum(rate, 0.95))
    width = hi[b] - lo[b]
    u = rng.random(codes.size)
    mass = -np.expm1(-lam * width)  # P(an exponential falls inside the bin's width)
    flat = lam * width < 1e-6
    off = np.where(flat, u * width, -np.log1p(-u * np.where(flat, 1.0, mass)) / lam)
    return np.floor(lo[b] + np.minimum(off, width - 1e-9))


def _alive(rate: np.ndarray, hazard: np.ndarray, recency: np.ndarray,
           rng: np.random.Generator) -> np.ndarray:
    """Draw the latent 'still a customer' flag given the silence since the last purchase."""
    stay = np.exp(-hazard * recency)
    silent = np.exp(np.log1p(-np.minimum(rate, 0.95)) * recency)
    p_alive = stay * silent / (stay * silent + (1 - stay))
    return rng.random(rate.size) < p_alive


def _tag_shares(twins_df: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per-twin spend shares of life tags the hub drew from the owners' released profiles
    (``share_<tag>`` columns; NaN where a twin's owner released none)."""
    return {c.removeprefix(TAG_SHARE_PREFIX): twins_df[c].cast(pl.Float32).fill_null(np.nan)
            .to_numpy() for c in twins_df.columns if c.startswith(TAG_SHARE_PREFIX)}


def _released_categories(twins_df: pl.DataFrame, merchant_type: str) -> np.ndarray | None:
    """(n, C) the owner's released spend share per category (``catshare_<category>``
    columns, see :func:`twins.hub.category_profile`); NaN rows where none was released."""
    cats = MERCHANT_TYPES[merchant_type].categories
    names = [CATEGORY_SHARE_PREFIX + c for c in cats]
    if not all(n in twins_df.columns for n in names):
        return None
    return np.column_stack([twins_df[n].cast(pl.Float32).fill_null(np.nan).to_numpy()
                            for n in names]).astype(F32)


def _category_weights(merchant_type: str, codes: dict[str, np.ndarray],
                      rng: np.random.Generator,
                      released: dict[str, np.ndarray] | None = None,
                      categories: np.ndarray | None = None) -> np.ndarray:
    """Spend shares: the base profile, life-tagged categories set by the tags; the share of
    a tag's categories is the released one where the twin carries it (see
    :func:`twins.hub.tag_profile`), else a public default within the tag level. The base
    profile (how a tag's spend splits between its categories, and the untagged categories
    between themselves) is the owner's released category profile where the twin carries it
    (``categories`` rows), else the public default :func:`base_spend_shares`."""
    mt = MERCHANT_TYPES[merchant_type]
    n = next(iter(codes.values())).size
    noise = rng.standard_normal((n, len(mt.categories)), dtype=F32)
    noise *= 0.3
    w = np.exp(noise, out=noise)
    base = base_spend_shares(merchant_type).astype(F32)[None, :]
    if categories is not None:
        known = ~np.isnan(categories).any(axis=1)
        base = np.where(known[:, None], np.maximum(categories, 1e-6), base).astype(F32)
    w *= base
    target = np.zeros((n, len(mt.categories)), dtype=F32)
    tagged = np.zeros(len(mt.categories), dtype=bool)
    for tag in LIFE_TAGS:
        cols = np.array([i for i, cat in enumerate(mt.categories) if mt.life.get(cat) == tag])
        if cols.size == 0:
            continue
        tagged[cols] = True
        # "yes" means the tag's categories hold >= 3% of spend (the schema's public rule).
        share = np.where(codes[tag] == 1, rng.uniform(0.06, 0.3, n), rng.uniform(0, 0.025, n))
        share = share.astype(F32)
        if released and tag in released:
            share = np.where(np.isnan(released[tag]), share, released[tag]).astype(F32)
        part = w[:, cols] / w[:, cols].sum(axis=1, keepdims=True)
        target[:, cols] = part * share[:, None]
    if not tagged.all():
        fixed = np.minimum(target.sum(axis=1, keepdims=True), 0.9)
        target *= fixed / np.maximum(target.sum(axis=1, keepdims=True), 1e-12)
        w[:, tagged] = 0.0
        w *= (1 - fixed) / w.sum(axis=1, keepdims=True)
        target += w
    target /= target.sum(axis=1, keepdims=True)
    return target
