"""Sweeps: one base offer varied over discounts × cohorts × durations, run in parallel.

Each grid cell is an ordinary :func:`simulation.experiment.run_experiment` of a variant of the
base offer: ``pct`` set to the cell's discount, ``target`` *replaced* by the cell's cohort
filters (the cohort ``all`` means no filter) and ``days`` set to the cell's duration. All cells
share the twins, the horizon, the replications and the seed, so cells differ only by the offer
(common random numbers across the grid too).

Cells run in worker processes (``concurrent.futures.ProcessPoolExecutor`` with the ``spawn``
start method: forking a process that already runs Polars and numpy threads can deadlock).
Each worker receives the twins once, through the pool initializer, not once per cell.
Every cell is validated in the parent before any worker starts, so a bad discount or an empty
cohort fails fast with one message instead of half a grid.
"""

from __future__ import annotations

import math
import multiprocessing as mp
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from retail.offers import Filter, Offer, parse_filter
from simulation.effects import target_mask
from simulation.experiment import run_experiment
from simulation.params import TwinParams
from twinsim.errors import CohortTooSmall, OfferError

__all__ = ["SWEEP_COLUMNS", "SweepCell", "SweepResult", "parse_cohorts", "parse_numbers",
           "run_sweep", "sweep_cells"]

_PCT_KINDS = ("discount", "cross_sell", "membership")
SWEEP_COLUMNS: tuple[str, ...] = (
    "discount", "cohort", "duration", "targeted", "redemption_rate", "incremental_margin",
    "incremental_margin_low", "incremental_margin_high", "net_profit", "net_profit_low",
    "net_profit_high", "roi", "roi_low", "roi_high", "offer_cost")


@dataclass(frozen=True, kw_only=True)
class SweepCell:
    """One grid point: the discount (percent), the cohort label and filters, the duration."""

    discount: float
    cohort: str
    filters: tuple[Filter, ...]
    duration: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.discount) and 0 < self.discount <= 100):
            raise OfferError(f"sweep discount {self.discount!r}: must be in (0, 100] percent")
        if self.duration <= 0:
            raise OfferError(f"sweep duration {self.duration!r}: must be a positive number "
                             "of days")

    def offer(self, base: Offer) -> Offer:
        """The base offer with this cell's discount, cohort and duration."""
        return replace(base, name=f"{base.name} [{self.discount:g}% {self.cohort} "
                                  f"{self.duration}d]",
                       pct=self.discount, target=self.filters, days=self.duration)


def parse_numbers(text: str, what: str) -> tuple[float, ...]:
    """``"5,10,20"`` → ``(5.0, 10.0, 20.0)``; the error names the option and the item."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            out.append(float(item))
        except ValueError:
            raise OfferError(f"{what}: {item!r} is not a number (expected e.g. 5,10,20)"
                             ) from None
    if not out:
        raise OfferError(f"{what}: no values given")
    return tuple(out)


def parse_cohorts(text: str) -> list[tuple[str, tuple[Filter, ...]]]:
    """``"pet=yes;organic_share>=high,tier=premium;all"`` → labelled filter tuples.

    Cohorts are separated by ``;``, filters within a cohort by ``,`` (AND); ``all`` is
    everybody.
    """
    cohorts = []
    for label in (s.strip() for s in text.split(";")):
        if not label:
            continue
        filters = () if label == "all" else tuple(
            parse_filter(f) for f in label.split(",") if f.strip())
        cohorts.append((label, filters))
    if not cohorts:
        raise OfferError("cohorts: none given (e.g. \"pet=yes;organic_share>=high;all\")")
    return cohorts


def sweep_cells(base: Offer, params: TwinParams, *, discounts: Sequence[float],
                cohorts: Sequence[tuple[str, tuple[Filter, ...]]],
                durations: Sequence[float], days: int) -> list[SweepCell]:
    """The validated grid: raises OfferError / CohortTooSmall naming the bad cell."""
    if base.kind not in _PCT_KINDS:
        raise OfferError(f"sweep: --discounts sets 'pct', which a {base.kind} offer does not "
                         f"have; use a base offer of kind {'/'.join(_PCT_KINDS)}")
    base.check_categories(params.merchant_type)
    for d in durations:
        if d != int(d) or d <= 0:
            raise OfferError(f"sweep duration {d!r}: must be a positive whole number of days")
        if base.start_day + int(d) > days:
            raise OfferError(f"sweep duration {int(d)} days: the offer would outlast the "
                             f"{days}-day horizon; raise --days")
    sizes: dict[str, int] = {}
    for label, filters in cohorts:
        sizes[label] = int(target_mask(params, filters).sum())
        if sizes[label] == 0:
            raise CohortTooSmall(f"sweep cohort {label!r}: selects no twins of {params.n}; "
                                 "loosen the filters")
    return [SweepCell(discount=float(p), cohort=label, filters=filters, duration=int(d))
            for p in discounts for label, filters in cohorts for d in durations]


@dataclass(frozen=True, kw_only=True, eq=False)
class SweepResult:
    """One row per cell (see ``SWEEP_COLUMNS``), in grid order."""

    base: dict[str, Any]
    days: int
    replications: int
    seed: int
    rows: tuple[dict[str, Any], ...]

    def to_polars(self) -> pl.DataFrame:
        return pl.DataFrame(list(self.rows), schema={
            c: (pl.String if c == "cohort" else pl.Int64 if c in ("duration", "targeted")
                else pl.Float64) for c in SWEEP_COLUMNS}, orient="row")

    def to_dict(self) -> dict[str, Any]:
        return {"base_offer": self.base, "days": self.days, "replications": self.replications,
                "seed": self.seed, "cells": [_nan_to_none(r) for r in self.rows]}


def _nan_to_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


_WORKER: dict[str, Any] = {}


def _init_worker(params: TwinParams, base: Offer, days: int, replications: int,
                 seed: int) -> None:
    _WORKER.update(params=params, base=base, days=days, replications=replications, seed=seed)


def _run_cell(cell: SweepCell) -> dict[str, Any]:
    w = _WORKER
    res = run_experiment(w["params"], cell.offer(w["base"]), days=w["days"],
                         replications=w["replications"], seed=w["seed"])
    o = res.overall
    row: dict[str, Any] = {"discount": cell.discount, "cohort": cell.cohort,
                           "duration": cell.duration,
                           "targeted": int(target_mask(w["params"], cell.filters).sum()),
                           "redemption_rate": o["redemption_rate"].mean,
                           "offer_cost": o["offer_cost"].mean}
    for k in ("incremental_margin", "net_profit", "roi"):
        row.update({k: o[k].mean, f"{k}_low": o[k].low, f"{k}_high": o[k].high})
    return row


def run_sweep(params: TwinParams, base: Offer, cells: Sequence[SweepCell], *, days: int = 90,
              replications: int = 5, seed: int = 0, processes: int = 1,
              on_done: Callable[[SweepCell], None] | None = None) -> SweepResult:
    """Run every cell (``processes`` > 1: in a spawn process pool); rows in grid order."""
    if processes < 1:
        raise ValueError(f"processes: must be >= 1, got {processes}")
    if processes == 1 or len(cells) == 1:
        _init_worker(params, base, days, replications, seed)
        rows = []
        for cell in cells:
            rows.append(_run_cell(cell))
            if on_done is not None:
                on_done(cell)
    else:
        rows = _run_pool(params, base, cells, days, replications, seed, processes, on_done)
    return SweepResult(base=base.to_dict(), days=days, replications=replications, seed=seed,
                       rows=tuple(rows))


def _run_pool(params: TwinParams, base: Offer, cells: Sequence[SweepCell], days: int,
              replications: int, seed: int, processes: int,
              on_done: Callable[[SweepCell], None] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any] | None] = [None] * len(cells)
    with ProcessPoolExecutor(max_workers=min(processes, len(cells)),
                             mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(params, base, days, replications, seed)) as pool:
        futures = {pool.submit(_run_cell, c): i for i, c in enumerate(cells)}
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            if on_done is not None:
                on_done(cells[i])
    return [r for r in out if r is not None]
