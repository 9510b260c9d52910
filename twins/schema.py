"""The public attribute schema: what a twin is made of.

Each attribute is a small discrete variable describing a customer's life as seen in
purchases. Bins are FIXED and PUBLIC (never derived from data), so releasing a count per
level leaks nothing about where the bins sit. Every level carries a public representative
value (a bin midpoint, a period in days, an indicator) from which the simulation recovers
behaviour parameters using the attribute levels alone.

Numeric attributes are binned by ``edges``: level ``i`` holds ``edges[i-1] <= x < edges[i]``
(with ``-inf`` / ``+inf`` at the ends), so the bins cover the whole real line. An attribute
with a ``null_level`` puts missing values (a customer without a car) in that level, first.
Nominal attributes (region, rhythm) have no edges; their ``rule`` says how a level is chosen.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from retail.schema import MERCHANT_TYPES, region_names

__all__ = [
    "CATEGORY_PROFILE",
    "CATEGORY_SHARE_PREFIX",
    "LIFE_TAGS",
    "NO_COST_KINDS",
    "PLAUSIBLE_ITEMS",
    "SCHEMA",
    "TOTAL_ATTRIBUTE",
    "Attribute",
    "CohortFilter",
    "Domain",
    "plausible_basket_max",
    "structural_constants",
    "structural_support",
]

# the ``attribute`` of a campaign's total rows in the hub's response table
TOTAL_ATTRIBUTE = "all"
# twin table columns ``share_<tag>``: spend share of a life tag's categories, drawn by the hub
# from the owner's released tag profile (Float32, null where none was released)
TAG_SHARE_PREFIX = "share_"
# twin table columns ``catshare_<category>``: the owner's released spend share of a category
# (Float32, null where none was released)
# offer kinds that give no discount: no cost table is released for their campaigns
NO_COST_KINDS: frozenset[str] = frozenset({"partner"})
CATEGORY_SHARE_PREFIX = "catshare_"
# the pseudo-attribute (and profile name) of a release's per-category spend sums
CATEGORY_PROFILE = "category"

# The common life-situation taxonomy (values of ``MerchantType.life``), in a fixed order.
LIFE_TAGS: tuple[str, ...] = ("pet", "baby", "meat", "fish", "menswear", "car", "leisure", "deli")


@dataclass(frozen=True, kw_only=True)
class Attribute:
    """One public discrete attribute: its levels, bin edges (or rule) and representatives."""

    name: str
    levels: tuple[str, ...]
    representatives: tuple[float, ...]
    description: str
    edges: tuple[float, ...] | None = None
    null_level: str | None = None
    rule: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"Attribute.name: {self.name!r} is not a snake_case identifier")
        if len(set(self.levels)) != len(self.levels) or len(self.levels) < 2:
            raise ValueError(f"Attribute.levels of {self.name!r}: need >= 2 distinct levels, "
                             f"got {self.levels!r}")
        if len(self.levels) > 255:
            raise ValueError(f"Attribute.levels of {self.name!r}: {len(self.levels)} > 255")
        if len(self.representatives) != len(self.levels):
            raise ValueError(f"Attribute.representatives of {self.name!r}: "
                             f"{len(self.representatives)} values for {len(self.levels)} levels")
        if self.edges is not None:
            self._check_edges()
        elif not self.rule:
            raise ValueError(f"Attribute {self.name!r}: a nominal attribute needs a rule")
        if self.null_level is not None and self.null_level != self.levels[0]:
            raise ValueError(f"Attribute.null_level of {self.name!r}: must be the first level, "
                             f"got {self.null_level!r}")

    def _check_edges(self) -> None:
        edges = self.edges or ()
        if any(not math.isfinite(e) for e in edges) or list(edges) != sorted(set(edges)):
            raise ValueError(f"Attribute.edges of {self.name!r}: must be finite and strictly "
                             f"increasing, got {edges!r}")
        expected = len(edges) + 1 + (self.null_level is not None)
        if expected != len(self.levels):
            raise ValueError(f"Attribute.edges of {self.name!r}: {len(edges)} edges give "
                             f"{expected} levels, but {len(self.levels)} levels are named")

    @property
    def cardinality(self) -> int:
        return len(self.levels)

    @property
    def offset(self) -> int:
        """Code of the first numeric bin (1 when a null level comes first)."""
        return int(self.null_level is not None)

    def code(self, level: str) -> int:
        try:
            return self.levels.index(level)
        except ValueError:
            raise ValueError(f"attribute {self.name!r}: unknown level {level!r}; "
                             f"known: {list(self.levels)}") from None

    def bin_expr(self, value: pl.Expr) -> pl.Expr:
        """Polars expression mapping a numeric value to its level code (UInt8)."""
        if self.edges is None:
            raise ValueError(f"attribute {self.name!r} is nominal; it has no bins")
        # code = number of edges <= x: vectorised, lazy, no per-row Python.
        code = pl.sum_horizontal([(value >= e).cast(pl.UInt8) for e in self.edges])
        code = (code + self.offset).cast(pl.UInt8)
        if self.null_level is not None:
            code = pl.when(value.is_null()).then(pl.lit(0, pl.UInt8)).otherwise(code)
        return code

    def bin_numpy(self, values: np.ndarray) -> np.ndarray:
        """The same binning for a numpy array (NaN goes to the null level, if any)."""
        if self.edges is None:
            raise ValueError(f"attribute {self.name!r} is nominal; it has no bins")
        x = np.asarray(values, dtype=float)
        codes = np.searchsorted(np.asarray(self.edges), x, side="right") + self.offset
        if self.null_level is not None:
            codes = np.where(np.isnan(x), 0, codes)
        return codes.astype(np.uint8)


def _binned(name: str, edges: tuple[float, ...], levels: tuple[str, ...],
            reps: tuple[float, ...], description: str, null_level: str | None = None) -> Attribute:
    return Attribute(name=name, edges=edges, levels=levels, representatives=reps,
                     description=description, null_level=null_level)


def _tag(tag: str) -> Attribute:
    return Attribute(
        name=tag, levels=("no", "yes"), edges=(0.03,), representatives=(0.0, 1.0),
        description=f"life situation '{tag}': yes when categories tagged '{tag}' make up at "
                    "least 3% of the customer's spend in the window (representative: indicator)")


def _attributes() -> tuple[Attribute, ...]:
    regions = region_names()
    core = (
        Attribute(name="region", levels=regions, representatives=tuple(map(float, range(8))),
                  rule="the customer's registered public region", description="home region"),
        _binned("tenure", (0.5, 1.0, 2.0, 4.0, 8.0),
                ("lt_6m", "6_12m", "1_2y", "2_4y", "4_8y", "8y_plus"),
                (0.25, 0.75, 1.5, 3.0, 6.0, 10.0), "years since sign-up at period end"),
        _binned("frequency", (0.25, 1.0, 2.0, 4.0, 8.0, 15.0),
                ("lt_0.25", "0.25_1", "1_2", "2_4", "4_8", "8_15", "15_plus"),
                (0.1, 0.6, 1.5, 3.0, 6.0, 11.0, 22.0),
                "purchase days per 30 days of membership in the window"),
        _binned("recency", (7.0, 14.0, 30.0, 60.0, 120.0, 365.0),
                ("lt_7d", "7_14d", "14_30d", "30_60d", "60_120d", "120_365d", "365d_plus"),
                (3.5, 10.5, 22.0, 45.0, 90.0, 240.0, 500.0),
                "days from the last purchase day to period end (never: last level)"),
        _binned("basket_value", (50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 5000.0, 20000.0,
                                 100000.0),
                ("lt_50", "50_100", "100_200", "200_400", "400_800", "800_1600", "1600_5k",
                 "5k_20k", "20k_100k", "100k_plus"),
                (25.0, 75.0, 150.0, 300.0, 600.0, 1200.0, 3300.0, 12500.0, 60000.0, 250000.0),
                "mean spend per purchase day, SEK (high bins for car merchants)"),
        _binned("basket_size", (2.0, 4.0, 8.0, 16.0, 32.0),
                ("lt_2", "2_4", "4_8", "8_16", "16_32", "32_plus"),
                (1.0, 3.0, 6.0, 12.0, 24.0, 40.0), "mean items (quantity) per purchase day"),
        _binned("tier", (0.5, 1.5), ("budget", "standard", "premium"), (0.0, 1.0, 2.0),
                "spend-weighted mean tier index (budget 0, standard 1, premium 2)"),
        _binned("organic_share", (0.05, 0.2, 0.5, 0.8),
                ("none", "low", "medium", "high", "very_high"), (0.02, 0.12, 0.35, 0.65, 0.9),
                "share of spend on organic items"),
        _binned("promo_share", (0.05, 0.2, 0.4, 0.6),
                ("none", "low", "medium", "high", "very_high"), (0.02, 0.12, 0.3, 0.5, 0.75),
                "share of spend on promotion items (outside the customer's own treated "
                "campaign windows)"),
    )
    tags = tuple(_tag(t) for t in LIFE_TAGS)
    rest = (
        _binned("weekday_pattern", (0.15, 0.5), ("weekdays", "spread", "weekend"),
                (0.05, 2 / 7, 0.7), "share of purchase days falling on Saturday or Sunday"),
        Attribute(
            name="rhythm", levels=("weekly", "two_week", "irregular", "sparse"),
            representatives=(7.0, 14.0, 0.0, 0.0), description="shopping rhythm (period, days)",
            rule="weeks are counted from the window start over the customer's membership; "
                 "sparse: < 8 weeks with a purchase; two_week: mean weekly spend in even vs "
                 "odd weeks differs by Welch t >= 3 and by >= 30% of the mean weekly spend; "
                 "weekly: a purchase in >= 75% of weeks; otherwise irregular"),
        _binned("volatility", (0.35, 0.7), ("low", "medium", "high"), (0.2, 0.5, 1.0),
                "coefficient of variation of spend per purchase day (< 2 days: low)"),
        _binned("channel", (0.1, 0.9), ("store", "mixed", "online"), (0.0, 0.5, 1.0),
                "share of purchase days with an online purchase"),
        _binned("vehicle_age", (1.0, 2.0, 3.0, 4.0, 6.0, 10.0),
                ("none", "lt_1y", "1y", "2y", "3y", "4_5y", "6_9y", "10y_plus"),
                (-1.0, 0.5, 1.5, 2.5, 3.5, 5.0, 8.0, 12.0),
                "age in whole years of the customer's vehicle at period end ('3y' is a "
                "three-year-old car); none when the merchant records no vehicle",
                null_level="none"),
    )
    return core + tags + rest


@dataclass(frozen=True, kw_only=True)
class Domain:
    """An ordered set of attributes: names, cardinalities, encode/decode helpers."""

    attributes: tuple[Attribute, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"Domain.attributes: duplicate names in {names}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.cardinality for a in self.attributes)

    def cardinalities(self) -> dict[str, int]:
        return {a.name: a.cardinality for a in self.attributes}

    def __getitem__(self, name: str) -> Attribute:
        return self.attributes[self.index(name)]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self.attributes)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ValueError(f"unknown attribute {name!r}; known: {list(self.names)}") from None

    def project(self, names: Iterable[str]) -> Domain:
        return Domain(attributes=tuple(self[n] for n in names))

    def encode(self, levels: pl.DataFrame) -> pl.DataFrame:
        """Level names (strings) to UInt8 codes, column by column."""
        return levels.with_columns(
            pl.col(a.name).replace_strict(list(a.levels), list(range(a.cardinality)),
                                          return_dtype=pl.UInt8)
            for a in self.attributes if a.name in levels.columns)

    def decode(self, codes: pl.DataFrame) -> pl.DataFrame:
        """UInt8 codes to level names, column by column (other columns pass through)."""
        return codes.with_columns(
            pl.col(a.name).replace_strict(list(range(a.cardinality)), list(a.levels),
                                          return_dtype=pl.String)
            for a in self.attributes if a.name in codes.columns)

    def check_codes(self, table: pl.DataFrame) -> None:
        """Raise ValueError naming the column and value when a code is out of range."""
        for a in self.attributes:
            if a.name not in table.columns:
                raise ValueError(f"table: missing attribute column {a.name!r}")
            col = table[a.name].to_numpy()
            if col.size and int(col.max()) >= a.cardinality:
                raise ValueError(f"table column {a.name!r}: code {int(col.max())} >= "
                                 f"cardinality {a.cardinality}")


SCHEMA: Domain = Domain(attributes=_attributes())


def structural_constants(merchant_type: str, domain: Domain = SCHEMA) -> dict[str, int]:
    """Attributes that are constant for every customer of a merchant type, by public rule.

    A grocery chain sells nothing tagged ``menswear`` and keeps no vehicle records, so those
    attributes are ``no`` / ``none`` for all its customers; measuring them would waste budget.
    """
    try:
        mtype = MERCHANT_TYPES[merchant_type]
    except KeyError:
        raise ValueError(f"merchant_type: unknown value {merchant_type!r}; "
                         f"known: {sorted(MERCHANT_TYPES)}") from None
    present = set(mtype.life.values())
    out = {t: 0 for t in LIFE_TAGS if t not in present and t in domain}
    if merchant_type != "car_brand" and "vehicle_age" in domain:
        out["vehicle_age"] = 0
    return out


# Items in the largest plausible purchase-day basket: the lower edge of basket_size's top level.
PLAUSIBLE_ITEMS = 32.0


def plausible_basket_max(merchant_type: str) -> float:
    """Largest plausible mean spend per purchase day (SEK) for a merchant type, by public rule.

    ``PLAUSIBLE_ITEMS`` items at the mean premium unit price of the merchant type's public
    default catalogue: a café basket of 60k SEK is impossible, a car dealer's is not.
    Data-independent, so it may shape releases and sampling without privacy cost.
    """
    from retail.catalogue import default_catalogue  # deferred: keeps schema import-light

    if merchant_type not in MERCHANT_TYPES:
        raise ValueError(f"merchant_type: unknown value {merchant_type!r}; "
                         f"known: {sorted(MERCHANT_TYPES)}")
    cat = default_catalogue(merchant_type)
    prices = [cat.price(c, "premium") for c in MERCHANT_TYPES[merchant_type].categories]
    return PLAUSIBLE_ITEMS * float(np.mean(prices))


def structural_support(merchant_type: str, domain: Domain = SCHEMA) -> dict[str, frozenset[int]]:
    """Allowed level codes per attribute for a merchant type, by public rule (structural zeros).

    Only attributes with impossible levels appear: ``basket_value`` levels whose lower edge is
    at or above :func:`plausible_basket_max`, and every non-constant level of the
    :func:`structural_constants`. Sampling should give the missing levels probability zero.
    """
    out = {name: frozenset({code}) for name, code in structural_constants(merchant_type,
                                                                          domain).items()}
    if "basket_value" in domain:
        attr = domain["basket_value"]
        cap = plausible_basket_max(merchant_type)
        lower = (0.0, *(attr.edges or ()))
        allowed = frozenset(attr.offset + i for i, lo in enumerate(lower) if lo < cap)
        if len(allowed) < attr.cardinality:
            out["basket_value"] = allowed
    return out


_OPS = ("!=", ">=", "<=", "=", ">", "<")


@dataclass(frozen=True, kw_only=True)
class CohortFilter:
    """Allowed level codes per attribute, combined with AND.

    Example clauses: ``pet=yes``, ``organic_share>=high``, ``region=Stockholm|Uppsala``.
    """

    allowed: Mapping[str, frozenset[int]]

    def __post_init__(self) -> None:
        for name, codes in self.allowed.items():
            if not codes:
                raise ValueError(f"CohortFilter.allowed[{name!r}]: no level allowed")

    @classmethod
    def parse(cls, clauses: str | Iterable[str], domain: Domain = SCHEMA) -> CohortFilter:
        """Parse clauses like ``"pet=yes, organic_share>=high"`` (ordinal ops use level order)."""
        items = clauses.split(",") if isinstance(clauses, str) else list(clauses)
        allowed: dict[str, frozenset[int]] = {}
        for raw in (c.strip() for c in items):
            if not raw:
                continue
            name, codes = _parse_clause(raw, domain)
            allowed[name] = allowed.get(name, codes) & codes
        return cls(allowed=allowed)

    def mask(self, table: pl.DataFrame) -> np.ndarray:
        """Boolean mask of the rows of a code table that satisfy the filter."""
        keep = np.ones(table.height, dtype=bool)
        for name, codes in self.allowed.items():
            keep &= np.isin(table[name].to_numpy(), sorted(codes))
        return keep


def _parse_clause(raw: str, domain: Domain) -> tuple[str, frozenset[int]]:
    for op in _OPS:
        if op in raw:
            name, level = (s.strip() for s in raw.split(op, 1))
            attr = domain[name]
            levels = [s.strip() for s in level.split("|")]
            codes = [attr.code(lv) for lv in levels]
            if op in ("=", "!=") or len(codes) == 1:
                return name, _apply(op, codes, attr.cardinality, raw)
            break
    raise ValueError(f"cohort filter clause {raw!r}: expected 'name OP level' with OP in "
                     f"{list(_OPS)} (alternatives with '|' only for = and !=)")


def _apply(op: str, codes: list[int], card: int, raw: str) -> frozenset[int]:
    c = codes[0]
    sets = {"=": set(codes), "!=": set(range(card)) - set(codes),
            ">=": set(range(c, card)), ">": set(range(c + 1, card)),
            "<=": set(range(c + 1)), "<": set(range(c))}
    out = frozenset(sets[op])
    if not out:
        raise ValueError(f"cohort filter clause {raw!r}: allows no level")
    return out
