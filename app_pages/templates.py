"""Offer templates in plain language: which fields a merchant fills in for each kind of offer.

Only presentation: labels, defaults and bounds. The offer itself is validated by
:class:`retail.offers.Offer` when the filled-in fields are turned into one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TEMPLATES", "Field", "Template"]


@dataclass(frozen=True, kw_only=True)
class Field:
    """One input of a template. ``kind``: number, categories, tiers, region, text, flag."""

    name: str
    label: str
    kind: str
    default: float | str | bool | None = None
    low: float = 0.0
    high: float = 1e9
    step: float = 1.0
    help: str = ""


@dataclass(frozen=True, kw_only=True)
class Template:
    kind: str
    label: str
    description: str
    fields: tuple[Field, ...]


def _pct(label: str, default: float) -> Field:
    return Field(name="pct", label=label, kind="number", default=default, low=1, high=100,
                 step=1)


TEMPLATES: dict[str, Template] = {t.kind: t for t in (
    Template(kind="discount", label="Discount",
             description="Money off what your customers buy.",
             fields=(_pct("Percent off", 20.0),
                     Field(name="categories", label="On which categories (none = all)",
                           kind="categories"),
                     Field(name="tiers", label="Only these price levels (none = all)",
                           kind="tiers"),
                     Field(name="organic_only", label="Organic items only", kind="flag",
                           default=False))),
    Template(kind="cross_sell", label="Cross-sell",
             description="Customers who buy one thing get money off another "
                         "(the suit buyer gets ties and shirts).",
             fields=(Field(name="trigger_categories", label="Customers who buy…",
                           kind="categories"),
                     Field(name="categories", label="…get money off", kind="categories"),
                     _pct("Percent off", 15.0))),
    Template(kind="partner", label="Partner-funded",
             description="A partner pays you to show its offer to your customers.",
             fields=(Field(name="partner", label="Partner's name", kind="text",
                           default="Partner"),
                     Field(name="partner_value", label="Value to the customer (SEK)",
                           kind="number", default=100.0, low=1, step=10),
                     Field(name="fee_per_exposure", label="Partner pays you per customer "
                           "reached (SEK)", kind="number", default=2.0, step=0.5),
                     Field(name="fee_per_redemption", label="…and per redemption (SEK)",
                           kind="number", default=20.0, step=1),
                     Field(name="location", label="Where the partner is (optional)",
                           kind="region",
                           help="Customers far from this place value the offer less."))),
    Template(kind="membership", label="Membership",
             description="A paid tier: a monthly fee for a discount on every purchase.",
             fields=(Field(name="monthly_fee", label="Monthly fee (SEK)", kind="number",
                           default=49.0, low=1, step=5),
                     _pct("Percent off every purchase", 10.0))),
    Template(kind="points", label="Points",
             description="Customers earn points on what they spend and redeem them later.",
             fields=(Field(name="earn_rate", label="Points per SEK spent", kind="number",
                           default=1.0, low=0.01, step=0.5),
                     Field(name="point_value", label="Value of one point (SEK)",
                           kind="number", default=0.02, low=0.001, step=0.01))),
)}
