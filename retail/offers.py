"""The offer vocabulary shared by the merchant's campaign log, nature and the simulation.

An :class:`Offer` is a frozen, validated value. It is read from and written to JSON/YAML with
plain-language keys, e.g.::

    {"name": "Quality organic meat", "kind": "discount", "pct": 20,
     "categories": ["meat"], "tiers": ["premium"], "organic_only": true,
     "days": 30, "target": ["organic_share>=high"]}

Kinds:
- ``discount``: ``pct`` percent or ``amount`` SEK off each qualifying item of ``categories``
  (all when empty) and ``tiers`` (all when empty).
- ``cross_sell``: buyers of ``trigger_categories`` get ``pct`` off ``categories``
  (the suit buyer gets ties and shirts).
- ``partner``: a partner (``partner``) funds an offer of value ``partner_value`` SEK for its
  own product; it pays the merchant ``fee_per_exposure`` and ``fee_per_redemption``.
- ``membership``: a paid tier (``monthly_fee``) giving ``pct`` off every purchase.
- ``points``: ``earn_rate`` points per SEK, each worth ``point_value`` SEK on redemption.

Every offer acts for ``days`` days from ``start_day``: a discount can be redeemed, a partner
voucher used, a membership's benefits enjoyed (and its fee paid) and points earned only then;
members of a membership or points programme sign up when the offer reaches them.

Any kind may carry a ``location`` (a public region): an offer for a place is worth less the
farther a customer lives from it. ``target`` holds attribute filters of the twin schema
(``pet=yes``, ``organic_share>=high``, ``region in Göteborg|Malmö``); they are parsed here and
checked against the schema by the simulation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from retail.schema import MERCHANT_TYPES, TIERS, region_names
from twinsim.errors import OfferError

__all__ = ["KINDS", "Filter", "Offer", "load_offer", "parse_filter"]

KINDS: tuple[str, ...] = ("discount", "cross_sell", "partner", "membership", "points")
_OPS = ("in", ">=", "<=", "!=", "=", ">", "<")
_FILTER_RE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(in\s|>=|<=|!=|=|>|<)\s*(.+?)\s*$")


@dataclass(frozen=True, kw_only=True)
class Filter:
    """An attribute filter ``attribute op value`` (``in`` takes ``a|b|c``)."""

    attribute: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise OfferError(f"target filter: unknown operator {self.op!r}; use one of {_OPS}")
        if not self.value:
            raise OfferError(f"target filter on {self.attribute!r}: empty value")

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(v.strip() for v in self.value.split("|")) if self.op == "in" else (self.value,)

    def __str__(self) -> str:
        return f"{self.attribute} in {self.value}" if self.op == "in" else (
            f"{self.attribute}{self.op}{self.value}")


def parse_filter(expr: str) -> Filter:
    """Parse ``pet=yes`` / ``organic_share>=high`` / ``region in Göteborg|Malmö``."""
    m = _FILTER_RE.match(expr)
    if m is None:
        raise OfferError(
            f"target filter {expr!r}: expected 'attribute=level', 'attribute>=level' or "
            "'attribute in a|b'")
    return Filter(attribute=m.group(1), op=m.group(2).strip(), value=m.group(3))


@dataclass(frozen=True, kw_only=True)
class Offer:
    name: str
    kind: str
    days: int = 30
    start_day: int = 0
    categories: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    organic_only: bool = False
    pct: float = 0.0
    amount: float = 0.0
    trigger_categories: tuple[str, ...] = ()
    location: str | None = None
    target: tuple[Filter, ...] = ()
    partner: str | None = None
    partner_value: float = 0.0
    fee_per_exposure: float = 0.0
    fee_per_redemption: float = 0.0
    monthly_fee: float = 0.0
    earn_rate: float = 0.0
    point_value: float = 0.0
    merchant_type: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check(bool(self.name.strip()), "name", self.name, "must not be empty")
        _check(self.kind in KINDS, "kind", self.kind, f"must be one of {KINDS}")
        _check(self.days > 0, "days", self.days, "must be a positive number of days")
        _check(self.start_day >= 0, "start_day", self.start_day, "must be >= 0")
        for name in ("pct", "amount", "partner_value", "fee_per_exposure", "fee_per_redemption",
                     "monthly_fee", "earn_rate", "point_value"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v >= 0, name, v, "must be a finite number >= 0")
        _check(self.pct <= 100, "pct", self.pct, "a discount cannot exceed 100%")
        bad_tiers = [t for t in self.tiers if t not in TIERS]
        _check(not bad_tiers, "tiers", bad_tiers, f"unknown tier; known: {TIERS}")
        if self.location is not None:
            _check(self.location in region_names(), "location", self.location,
                   f"unknown region; known: {region_names()}")
        self._check_kind()
        if self.merchant_type is not None:
            self.check_categories(self.merchant_type)

    def _check_kind(self) -> None:
        k = self.kind
        if k in ("discount", "cross_sell"):
            _check(self.pct > 0 or self.amount > 0, "pct", self.pct,
                   f"a {k} needs pct > 0 or amount > 0")
        if k == "cross_sell":
            _check(bool(self.trigger_categories), "trigger_categories", (),
                   "a cross_sell needs the categories whose buyers get the offer")
            _check(bool(self.categories), "categories", (), "a cross_sell needs categories")
        if k == "partner":
            _check(bool(self.partner), "partner", self.partner, "a partner offer names a partner")
            _check(self.partner_value > 0, "partner_value", self.partner_value,
                   "a partner offer needs a value to the customer > 0")
        if k == "membership":
            _check(self.monthly_fee > 0, "monthly_fee", self.monthly_fee, "must be > 0")
        if k == "points":
            _check(self.earn_rate > 0 and self.point_value > 0, "earn_rate", self.earn_rate,
                   "points need earn_rate > 0 and point_value > 0")

    def check_categories(self, merchant_type: str) -> None:
        """Raise :class:`OfferError` if a category is not in the merchant type's list."""
        mt = MERCHANT_TYPES.get(merchant_type)
        _check(mt is not None, "merchant_type", merchant_type, "unknown merchant type")
        assert mt is not None
        for name in ("categories", "trigger_categories"):
            bad = [c for c in getattr(self, name) if c not in mt.categories]
            _check(not bad, name, bad, f"unknown category for a {merchant_type}; "
                   f"known: {mt.categories}")

    @property
    def end_day(self) -> int:
        return self.start_day + self.days

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("merchant_type")
        d["target"] = [str(f) for f in self.target]
        defaults = {f.name: f.default for f in fields(self) if f.name not in ("name", "kind")}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()
                if k in ("name", "kind", "days", "target") or v != defaults.get(k)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, merchant_type: str | None = None) -> Offer:
        if not isinstance(data, Mapping):
            raise OfferError(f"offer: expected a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OfferError(f"offer: unknown field(s) {unknown}; known: {sorted(known)}")
        kw: dict[str, Any] = dict(data)
        for name in ("categories", "tiers", "trigger_categories"):
            if name in kw:
                kw[name] = _as_tuple(kw[name], name)
        if "target" in kw:
            kw["target"] = _parse_target(kw["target"])
        if merchant_type is not None:
            kw["merchant_type"] = merchant_type
        try:
            return cls(**kw)
        except TypeError as exc:
            raise OfferError(f"offer: {exc}") from None

    @classmethod
    def from_json(cls, text: str, *, merchant_type: str | None = None) -> Offer:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OfferError(f"offer JSON: {exc}") from None
        return cls.from_dict(data, merchant_type=merchant_type)


def load_offer(path: str | Path, *, merchant_type: str | None = None) -> Offer:
    """Load an offer from a JSON or YAML file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = yaml.safe_load(text) if p.suffix in {".yaml", ".yml"} else json.loads(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise OfferError(f"{p}: cannot read offer: {exc}") from None
    try:
        return Offer.from_dict(data, merchant_type=merchant_type)
    except OfferError as exc:
        raise OfferError(f"{p}: {exc}") from None


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise OfferError(f"offer field {name!r} = {value!r}: {rule}")


def _as_tuple(v: Any, name: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list | tuple):
        return tuple(str(x) for x in v)
    raise OfferError(f"offer field {name!r} = {v!r}: expected a list of names")


def _parse_target(v: Any) -> tuple[Filter, ...]:
    if isinstance(v, str):
        v = [s for s in v.split(",") if s.strip()]
    if isinstance(v, Mapping):
        return tuple(Filter(attribute=str(k), op="=", value=str(x)) for k, x in v.items())
    if not isinstance(v, list | tuple):
        raise OfferError(f"offer field 'target' = {v!r}: expected filters like ['pet=yes']")
    return tuple(x if isinstance(x, Filter) else parse_filter(str(x)) for x in v)
