"""The app's facade over twins and simulation: populations, offers, trials, sweeps, exports.

Pages call these functions only. Populations are a merchant's own twins, a cohort of other
merchants' twins (by merchant type, region and life situation, sized by the DP estimate), or
the demo personas of :func:`simulation.synthetic_twins` (no release needed). Expensive steps
are cached: fitted models as shared resources, twins and results as data.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st

from app_pages import services
from privacy.release import Release
from retail.catalogue import default_catalogue
from retail.merchant import read_merchant_info
from retail.offers import Filter, Offer, parse_filter
from simulation import (
    ExperimentResult,
    Forecast,
    forecast,
    params_from_twins,
    run_experiment,
    synthetic_twins,
)
from simulation.params import TwinParams
from simulation.sweep import SweepCell, run_sweep, sweep_cells
from twins.hub import Cohort, estimate_cohort_size, twins_from_releases
from twins.release import MARGINAL_PREFIX
from twins.schema import LIFE_TAGS, CohortFilter
from twins.synth import MIN_COHORT
from twinsim.errors import CohortTooSmall

__all__ = [
    "EXPORTS",
    "KPIS",
    "MIN_COHORT",
    "SEGMENTS",
    "SOURCES",
    "SWEEP_COHORTS",
    "Population",
    "build_offer",
    "cli_command",
    "cohort_size",
    "compare_table",
    "config_json",
    "daily_table",
    "export_bytes",
    "fit_settings",
    "forecast_table",
    "has_twin_release",
    "kpi_table",
    "population_twins",
    "run_forecast",
    "run_trial",
    "segment_choices",
    "segment_table",
    "sweep",
    "sweep_cohorts",
    "twins_parquet",
]

SOURCES = {"own": "My own customers' twins", "cohort": "A cohort from other merchants",
           "demo": "Demo personas (no release needed)"}
KPIS: tuple[tuple[str, str, str], ...] = (
    ("redemption_rate", "Redemption", "%"), ("incremental_revenue", "Incremental revenue", "SEK"),
    ("incremental_margin", "Incremental margin", "SEK"), ("roi", "ROI", "x"))
SYNTHESISER_ENV = "TWINSIM_SYNTHESISER"
SEGMENTS = {"tier": "price level", "region": "region", "frequency": "visit frequency",
            "organic_share": "organic share", "merchant_type": "source merchant type (cohorts)",
            "owner": "source owner, pseudonymous (cohorts)", "persona": "persona (demo)"}


@dataclass(frozen=True, kw_only=True)
class Population:
    """Who an offer is trialled on. ``merchant`` is the trialling merchant's folder."""

    source: str
    merchant: str
    world: str = ""
    merchant_types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    life: tuple[str, ...] = ()
    n_twins: int = 5000

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Population.source: {self.source!r}; use one of {list(SOURCES)}")
        if not 10 <= self.n_twins <= 1_000_000:
            raise ValueError(f"Population.n_twins: {self.n_twins} must be in 10..1000000")

    @property
    def merchant_type(self) -> str:
        return read_merchant_info(self.merchant).merchant_type

    def where(self) -> CohortFilter | None:
        """The region and life-situation filter (None when there is none)."""
        clauses = ([f"region={'|'.join(self.regions)}"] if self.regions else []) + [
            f"{tag}=yes" for tag in self.life]
        return CohortFilter.parse(clauses) if clauses else None

    def key(self) -> str:
        """A JSON string of the fields (the cache key; :meth:`from_key` reverses it)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_key(cls, key: str) -> Population:
        data = json.loads(key)
        return cls(source=str(data["source"]), merchant=str(data["merchant"]),
                   world=str(data.get("world", "")),
                   merchant_types=tuple(data.get("merchant_types", ())),
                   regions=tuple(data.get("regions", ())), life=tuple(data.get("life", ())),
                   n_twins=int(data.get("n_twins", 5000)))


# -- hub side: releases, cohorts, twins --------------------------------------------------

def fit_settings() -> dict[str, Any]:
    """How the hub fits each release (:func:`twins.hub.fit_release`; fits are cached on disk
    by release hash). ``TWINSIM_SYNTHESISER=independent`` picks the fast baseline (tests)."""
    return {"synthesiser": os.environ.get(SYNTHESISER_ENV, "mixture")}


def has_twin_release(folder: str) -> bool:
    """Whether the merchant keeps a twin release its own twins can be built from."""
    return _latest_twin_release(folder) is not None


def _latest_twin_release(folder: str) -> Release | None:
    kept = [r for r in services.releases(folder)
            if any(m.name.startswith(MARGINAL_PREFIX) for m in r.measurements)]
    return kept[-1] if kept else None


def _releases_for(pop: Population) -> list[Release]:
    me = Path(pop.merchant).resolve()
    if pop.source == "own":  # the merchant's own folder, inside the world or not
        latest = _latest_twin_release(pop.merchant)
        if latest is None:
            raise CohortTooSmall(f"{me.name} has no twin release yet: make one on the Data "
                                 "owners page (it spends privacy budget), or use the demo "
                                 "personas.")
        return [latest]
    found = [_latest_twin_release(row["folder"])
             for row in services.merchants(pop.world).iter_rows(named=True)
             if Path(row["folder"]).resolve() != me]
    return [r for r in found if r is not None]


def _cohort(pop: Population) -> Cohort:
    return Cohort(merchant_types=pop.merchant_types if pop.source == "cohort" else (),
                  regions=pop.regions, where=", ".join(f"{t}=yes" for t in pop.life))


# -- populations -----------------------------------------------------------------------

def cohort_size(pop: Population) -> dict[str, float]:
    """DP-estimated size of the population per owner (pseudonym and merchant type; the demo
    population: its size). ``CohortTooSmall`` when no release matches."""
    if pop.source == "demo":
        return {"demo personas": float(pop.n_twins)}
    releases = _releases_for(pop)
    if not releases:
        raise CohortTooSmall("No other merchant has released twin marginals yet.")
    types = {r.owner: r.merchant_type for r in releases}
    try:
        size = estimate_cohort_size(releases, _cohort(pop), **fit_settings())
    except CohortTooSmall:  # no owner of these types operates in these regions
        return {}
    return {f"{o} ({types[o]})": s for o, s in size.by_owner.items()}


def population_twins(pop: Population, seed: int) -> pl.DataFrame:
    """The twin attribute table (level codes) of the population; ``CohortTooSmall`` when
    the DP-estimated cohort is below the minimum."""
    return _twins(pop.key(), seed)


@st.cache_data(show_spinner=False, max_entries=16)
def _twins(pop_key: str, seed: int) -> pl.DataFrame:
    pop = Population.from_key(pop_key)
    if pop.source == "demo":
        twins = synthetic_twins(pop.n_twins, pop.merchant_type, seed=seed)
        where = pop.where()
        twins = twins if where is None else twins.filter(pl.Series(where.mask(twins)))
        if twins.height < MIN_COHORT:
            raise CohortTooSmall(f"only {twins.height} demo twins match the filter, below the "
                                 f"minimum {MIN_COHORT}; widen the filter")
        return twins
    return twins_from_releases(_releases_for(pop), n=pop.n_twins, seed=seed,
                               cohort=_cohort(pop), min_size=MIN_COHORT, **fit_settings())


@st.cache_resource(show_spinner=False, max_entries=8)
def _params(pop_key: str, seed: int, merchant_type: str) -> TwinParams:
    return params_from_twins(_twins(pop_key, seed), merchant_type, seed=seed)


# -- offers and trials -----------------------------------------------------------------

def build_offer(kind: str, values: dict[str, Any], *, name: str, days: int, start_day: int,
                merchant_type: str) -> Offer:
    """An offer from a template's filled-in fields (empty optional fields are left out)."""
    data = {k: v for k, v in values.items() if v not in (None, "", [], ())}
    return Offer.from_dict({"name": name, "kind": kind, "days": days, "start_day": start_day,
                            **data}, merchant_type=merchant_type)


def run_trial(pop: Population, offer: Offer, *, days: int, replications: int, seed: int,
              segments: str | None = None) -> ExperimentResult:
    """Treatment vs control on the population's twins, with 95% CIs (cached)."""
    return _trial(pop.key(), offer.to_json(), days, replications, seed, segments)


@st.cache_data(show_spinner=False, max_entries=32)
def _trial(pop_key: str, offer_json: str, days: int, replications: int, seed: int,
           segments: str | None) -> ExperimentResult:
    mtype = json.loads(pop_key)["merchant"]
    mtype = read_merchant_info(mtype).merchant_type
    offer = Offer.from_json(offer_json, merchant_type=mtype)
    return run_experiment(_params(pop_key, seed, mtype), offer,
                          catalogue=default_catalogue(mtype), days=days,
                          replications=replications, seed=seed, segments=segments)


def run_forecast(pop: Population, *, days: int, replications: int, seed: int) -> Forecast:
    """Business as usual (no offer) with 95% prediction intervals (cached)."""
    return _forecast(pop.key(), days, replications, seed)


@st.cache_data(show_spinner=False, max_entries=16)
def _forecast(pop_key: str, days: int, replications: int, seed: int) -> Forecast:
    mtype = read_merchant_info(json.loads(pop_key)["merchant"]).merchant_type
    return forecast(_params(pop_key, seed, mtype), catalogue=default_catalogue(mtype),
                    days=days, replications=replications, seed=seed)


SWEEP_COHORTS: tuple[str, ...] = ("everyone", *LIFE_TAGS)


def sweep_cohorts(labels: list[str]) -> list[tuple[str, tuple[Filter, ...]]]:
    """Sweep cohort labels as offer targets ("everyone": untargeted; a tag: ``tag=yes``)."""
    return [(label, () if label == "everyone" else (parse_filter(f"{label}=yes"),))
            for label in labels]


def sweep(pop: Population, offer: Offer, *, discounts: list[float],
          cohorts: list[tuple[str, tuple[Filter, ...]]], days: int, replications: int,
          seed: int, progress: Callable[[int, int], object] | None = None) -> pl.DataFrame:
    """ROI over discount × targeted cohort on the population's twins
    (:func:`simulation.sweep.run_sweep`); ``progress(done, total)`` after each cell."""
    mtype = pop.merchant_type
    params = _params(pop.key(), seed, mtype)
    cells = sweep_cells(offer, params, discounts=discounts, cohorts=cohorts,
                        durations=[offer.days], days=days)
    done = iter(range(1, len(cells) + 1))

    def tick(_cell: SweepCell) -> None:
        if progress is not None:
            progress(next(done), len(cells))

    result = run_sweep(params, offer, cells, days=days, replications=replications, seed=seed,
                       on_done=tick)
    return result.to_polars()


# -- results for display and export ----------------------------------------------------

def kpi_table(result: ExperimentResult) -> pl.DataFrame:
    """The four KPI cards: value and 95% CI."""
    return pl.DataFrame([{"kpi": k, "label": label, "unit": unit,
                          "value": _num(result.overall[k].mean),
                          "low": _num(result.overall[k].low),
                          "high": _num(result.overall[k].high)} for k, label, unit in KPIS],
                        schema={"kpi": pl.String, "label": pl.String, "unit": pl.String,
                                "value": pl.Float64, "low": pl.Float64, "high": pl.Float64})


def _num(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def forecast_table(fc: Forecast) -> pl.DataFrame:
    """Forecast totals over the horizon as KPI cards (95% prediction intervals)."""
    rows = [("revenue", "Revenue", "SEK", fc.revenue), ("margin", "Margin", "SEK", fc.margin),
            ("transactions", "Purchase days", "", fc.transactions),
            ("active_at_horizon", "Customers at the end", "", fc.active_at_horizon)]
    return pl.DataFrame([{"kpi": k, "label": label, "unit": unit, "value": _num(e.mean),
                          "low": _num(e.low), "high": _num(e.high)}
                         for k, label, unit, e in rows])


def daily_table(result: ExperimentResult, field: str = "revenue") -> pl.DataFrame:
    """Mean daily ``field`` per arm (long form: day, arm, field)."""
    return result.daily.select("day", "arm", field)


def segment_choices(pop: Population) -> list[str]:
    """The attributes results can be broken down by for this population."""
    extra = {"demo": ("persona",), "cohort": ("merchant_type", "owner"), "own": ()}[pop.source]
    return [s for s in SEGMENTS if s not in ("merchant_type", "owner", "persona") or s in extra]


def segment_table(result: ExperimentResult) -> pl.DataFrame:
    """One row per segment: reach and the four KPIs (means)."""
    keys = ("reach", *(k for k, _, _ in KPIS))
    return pl.DataFrame([{"segment": seg, **{k: _num(m[k].mean) for k in keys}}
                         for seg, m in result.segments.items()],
                        schema={"segment": pl.String, **dict.fromkeys(keys, pl.Float64)})


def compare_table(trials: list[tuple[str, ExperimentResult]]) -> pl.DataFrame:
    """Offers side by side: one row per KPI, one column per offer ("mean [low, high]")."""
    rows = []
    for key, label, unit in (("reach", "Reach", ""), *KPIS, ("net_profit", "Net profit", "SEK")):
        row = {"KPI": label}
        for name, res in trials:
            e = res.overall[key]
            row[name] = (f"{services.format_value(_num(e.mean), unit)} "
                         f"[{services.format_value(_num(e.low), unit)}, "
                         f"{services.format_value(_num(e.high), unit)}]")
        rows.append(row)
    return pl.DataFrame(rows)


def config_json(pop: Population, offer: Offer, *, days: int, replications: int, seed: int,
                segments: str | None = None) -> str:
    """Everything needed to reproduce a trial (from the CLI or a notebook)."""
    return json.dumps({"population": asdict(pop), "offer": offer.to_dict(), "days": days,
                       "replications": replications, "seed": seed, "segments": segments},
                      ensure_ascii=False, indent=2)


def cli_command(pop: Population, offer: Offer, *, days: int, replications: int, seed: int,
                segments: str | None = None) -> str:
    """The ``twinsim simulate`` line that reproduces a trial from the exported files
    (``offer.json`` and ``twins.parquet``, the exact twin table the app simulated)."""
    seg = f" --segments {segments}" if segments else ""
    return (f"twinsim simulate --offer offer.json --twins twins.parquet --merchant-type "
            f"{pop.merchant_type} --days {days} --replications {replications} --seed {seed}"
            f"{seg}")


def twins_parquet(pop: Population, seed: int) -> bytes:
    """The population's twin table as Parquet (for ``twinsim simulate --twins``)."""
    buf = io.BytesIO()
    population_twins(pop, seed).write_parquet(buf)
    return buf.getvalue()


EXPORTS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
           "json": "application/json"}


def export_bytes(result: ExperimentResult, fmt: str, config: str = "") -> bytes:
    """Results as ``csv`` / ``parquet`` (metric rows) or ``json`` (everything + config)."""
    if fmt == "json":
        doc = {"config": json.loads(config) if config else None, "result": result.to_dict()}
        return json.dumps(doc, ensure_ascii=False, indent=2, default=_nan_safe).encode()
    table = result.to_polars()
    if fmt == "csv":
        return table.write_csv().encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        table.write_parquet(buf)
        return buf.getvalue()
    raise ValueError(f"export format {fmt!r}: use csv, parquet or json")


def _nan_safe(x: Any) -> Any:
    return None if isinstance(x, float) and np.isnan(x) else str(x)
