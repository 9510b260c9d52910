"""People and the customers they become at each merchant, with per-person parameters.

A *person* has a persona, a home region and life facts (pet, baby, kids, a car of the world's
car brand and when it was bought). A person may be a customer of several merchants under a
different customer id at each; the link (``person_id``) lives only in ``_truth``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from retail.schema import MERCHANT_TYPES, REGIONS
from retail.world import rng as crn
from retail.world.personas import MERCHANTS, PERSONAS, TYPE_BEHAVIOUR, WorldMerchant

__all__ = ["People", "Population", "make_people", "make_population", "select_customers"]

REGION_SHARES = (0.32, 0.18, 0.12, 0.08, 0.06, 0.07, 0.08, 0.09)
N_DAYS = 365
_YEAR = 365.0


@dataclass(frozen=True, kw_only=True)
class People:
    """Everyone in the world (arrays of equal length; index = person_id)."""

    persona: np.ndarray  # int8 index into PERSONAS
    region: np.ndarray  # int8 index into REGIONS
    pet: np.ndarray
    dog: np.ndarray
    cat: np.ndarray
    baby: np.ndarray
    kids: np.ndarray
    menswear: np.ndarray
    car_1: np.ndarray  # owns a car of the world's car brand
    car_first_day: np.ndarray  # first purchase (day relative to period start; nan if none)
    car_day: np.ndarray  # latest purchase (nan if none)

    @property
    def n(self) -> int:
        return int(self.persona.size)


def _persona_attr(persona: np.ndarray, attr: str) -> np.ndarray:
    return np.array([getattr(p, attr) for p in PERSONAS], dtype=np.float64)[persona]


def make_people(rng: np.random.Generator, n: int) -> People:
    shares = np.array([p.share for p in PERSONAS])
    persona = rng.choice(len(PERSONAS), size=n, p=shares / shares.sum()).astype(np.int8)
    region = rng.choice(len(REGIONS), size=n, p=np.array(REGION_SHARES)).astype(np.int8)
    pet = rng.random(n) < _persona_attr(persona, "pet")
    dog = pet & ((persona == 3) | (rng.random(n) < 0.35))
    flags = {k: rng.random(n) < _persona_attr(persona, k) for k in ("baby", "kids", "menswear")}
    own_p = np.where(persona == 8, 0.12, np.where(persona == 6, 0.01, 0.06))
    car_1 = rng.random(n) < own_p
    age = rng.uniform(0.2, 9.0, n)
    first = np.where(car_1, -age * _YEAR, np.nan)
    # Owners of three-to-four-year-old cars are the likeliest to replace them this year.
    replace_p = 0.03 + 0.35 * np.exp(-0.5 * ((age - 3.5) / 1.0) ** 2)
    replaced = car_1 & (rng.random(n) < replace_p)
    new_owner = car_1 & (rng.random(n) < 0.05)
    in_year = rng.uniform(0, N_DAYS - 1, n).round()
    first = np.where(new_owner, in_year, first)
    latest = np.where(replaced | new_owner, in_year, first)
    return People(persona=persona, region=region, pet=pet, dog=dog, cat=pet & ~dog,
                  car_1=car_1, car_first_day=first, car_day=latest, **flags)


def select_customers(rng: np.random.Generator, people: People, m: WorldMerchant,
                     n_target: int) -> np.ndarray:
    """Person ids of the merchant's customers (weighted sampling without replacement)."""
    names = [r.name for r in REGIONS]
    ok = np.isin(people.region, [names.index(r) for r in m.regions])
    if m.requires is not None:
        ok &= getattr(people, m.requires)
    pull = np.array([m.affinity.get(p.name, 1.0) for p in PERSONAS])[people.persona]
    keys = np.where(ok, np.log(np.maximum(pull, 1e-12)) + rng.gumbel(size=people.n), -np.inf)
    k = min(n_target, int(ok.sum()))
    chosen = np.argpartition(-keys, k - 1)[:k] if k > 0 else np.zeros(0, np.int64)
    return np.sort(chosen)


@dataclass(frozen=True, kw_only=True)
class Population:
    """Per-customer behaviour parameters of one merchant's customers (index = customer)."""

    person: np.ndarray  # int64 person ids
    key: np.ndarray  # uint64 counter-based random keys
    persona: np.ndarray
    region: np.ndarray
    rate: np.ndarray  # visits per day before weekday/season/rhythm
    lines: np.ndarray
    qty: np.ndarray
    price_sens: np.ndarray
    premium: np.ndarray
    organic: np.ndarray
    promo: np.ndarray
    online: np.ndarray
    hazard: np.ndarray  # churn hazard per day
    basket_sigma: np.ndarray
    erratic: np.ndarray
    rhythm: np.ndarray
    phase: np.ndarray
    affinity: np.ndarray  # (n, C) float32, rows sum to 1
    signup_day: np.ndarray
    store_id: np.ndarray
    event_day: np.ndarray  # a forced purchase (a new car) on this day, -1 if none
    car_day: np.ndarray  # latest car_1 purchase day (nan if none)
    shops_at: np.ndarray  # bitmask over MERCHANTS

    def __post_init__(self) -> None:
        n = self.person.size
        for f in fields(self):
            v = getattr(self, f.name)
            if v.shape[0] != n:
                raise ValueError(f"Population.{f.name}: length {v.shape[0]} != {n}")

    @property
    def n(self) -> int:
        return int(self.person.size)

    @cached_property
    def fortnight(self) -> np.ndarray:
        """(14, n) rhythm multipliers by day modulo 14 (1 ± amplitude; 1 without children)."""
        day = np.arange(14)[:, None]
        kids_week = ((day + self.phase[None, :]) // 7) % 2 == 0
        return np.where(kids_week, 1.0 + self.rhythm, 1.0 - self.rhythm)

    def take(self, idx: np.ndarray) -> Population:
        return Population(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def _ln(rng: np.random.Generator, sigma: float | np.ndarray, n: int) -> np.ndarray:
    """Mean-one lognormal noise."""
    return np.exp(sigma * rng.standard_normal(n) - 0.5 * np.square(sigma))


def _beta(rng: np.random.Generator, mean: np.ndarray, conc: float) -> np.ndarray:
    m = np.clip(mean, 0.005, 0.995)
    return rng.beta(m * conc, (1 - m) * conc)


def _affinity(rng: np.random.Generator, people: People, person: np.ndarray,
              merchant_type: str) -> np.ndarray:
    tb = TYPE_BEHAVIOUR[merchant_type]
    cats = MERCHANT_TYPES[merchant_type].categories
    persona = people.persona[person]
    n = person.size
    w = np.empty((n, len(cats)), dtype=np.float64)
    for j, c in enumerate(cats):
        mult = np.array([p.category.get(c, 1.0) for p in PERSONAS])[persona]
        w[:, j] = tb.weights[c] * mult * _ln(rng, 0.45, n)
        flag = tb.flag.get(c)
        if flag is not None:
            w[:, j] *= getattr(people, flag)[person]
    total = w.sum(axis=1, keepdims=True)
    return (w / np.where(total > 0, total, 1.0)).astype(np.float32)


def make_population(rng: np.random.Generator, people: People, person: np.ndarray,
                    m: WorldMerchant, shops_at: np.ndarray) -> Population:
    tb = TYPE_BEHAVIOUR[m.merchant_type]
    n = person.size
    persona = people.persona[person]
    pa = lambda attr: _persona_attr(persona, attr)  # noqa: E731
    rate = tb.rate * pa("rate") * _ln(rng, 0.5, n)
    car_day = people.car_day[person]
    event_day = np.full(n, -1, dtype=np.int32)
    signup = np.where(rng.random(n) < 0.85, -(rng.exponential(900, n) + 1),
                      rng.uniform(0, 330, n)).round().astype(np.int32)
    if m.merchant_type == "car_brand":
        first = people.car_first_day[person]
        age_years = np.clip(-first / _YEAR, 0.0, 3.0)
        rate = rate * (0.5 + 0.35 * age_years) / pa("rate")
        in_year = car_day >= 0
        event_day = np.where(in_year, car_day, -1).astype(np.int32)
        signup = np.floor(first).astype(np.int32)
    n_stores = max(1, int(np.ceil(3 * m.size)))
    region = people.region[person]
    return Population(
        person=person.astype(np.int64), key=crn.customer_keys(rng, n), persona=persona,
        region=region, rate=rate, lines=tb.lines * pa("lines") * _ln(rng, 0.25, n),
        qty=tb.qty * pa("qty") * _ln(rng, 0.3, n),
        price_sens=_beta(rng, pa("price_sens"), 10), premium=pa("premium") * _ln(rng, 0.3, n),
        organic=np.clip(_beta(rng, pa("organic"), 8) + tb.organic_bias, 0, 0.97),
        promo=_beta(rng, pa("promo"), 8), online=_beta(rng, pa("online"), 6),
        hazard=-np.log1p(-pa("churn")) / _YEAR * _ln(rng, 0.5, n),
        basket_sigma=pa("basket_sigma"), erratic=pa("erratic") > 0,
        rhythm=pa("rhythm") * rng.uniform(0.7, 1.3, n), phase=rng.integers(0, 14, n),
        affinity=_affinity(rng, people, person, m.merchant_type), signup_day=signup,
        store_id=(region.astype(np.int32) * 100 + 1 + rng.integers(0, n_stores, n)).astype(
            np.int32),
        event_day=event_day, car_day=car_day, shops_at=shops_at[person])


def merchant_bit(merchant_id: str) -> int:
    return 1 << [m.merchant_id for m in MERCHANTS].index(merchant_id)
