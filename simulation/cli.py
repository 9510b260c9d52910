"""``twinsim simulate``, ``twinsim forecast`` and ``twinsim sweep``: twins from the shell.

Twins come from a Parquet file of attribute codes (``--twins``, as written by
``twinsim twins``) or from the demo personas (``--demo N``). The merchant type is
``--merchant-type``, else the file's metadata (key ``merchant_type`` or ``twinsim.merchant_type``),
else a ``merchant_type`` column. The commands only wire options to :func:`run_experiment`,
:func:`forecast` and :func:`run_sweep`; every error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from retail.offers import load_offer
from simulation.experiment import Estimate, run_experiment
from simulation.forecast import forecast
from simulation.params import TwinParams, params_from_twins
from simulation.sweep import parse_cohorts, parse_numbers, run_sweep, sweep_cells
from twinsim.errors import TwinsimError

__all__ = ["forecast_command", "load_twins", "simulate_command", "sweep_command",
           "twins_merchant_type"]

TwinsOpt = Annotated[Path | None, typer.Option(
    "--twins", help="Parquet of twin attribute codes (from 'twinsim twins').")]
DemoOpt = Annotated[int, typer.Option("--demo", help="Without --twins: N demo-persona twins.")]
TypeOpt = Annotated[str | None, typer.Option(
    "--merchant-type", help="Merchant type of the twins (default: from the twins file).")]
OfferOpt = Annotated[Path, typer.Option("--offer", help="Offer JSON/YAML file.")]
DaysOpt = Annotated[int, typer.Option("--days", help="Horizon in days.")]
RepsOpt = Annotated[int, typer.Option("--replications", help="Replications (>= 2).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Simulation seed.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
_META_KEYS = (b"merchant_type", b"twinsim.merchant_type")


def twins_merchant_type(path: Path, table: pl.DataFrame) -> str | None:
    """The merchant type recorded in a twins file (metadata or column), or None."""
    meta = pq.read_schema(path).metadata or {}
    for key in _META_KEYS:
        if key in meta:
            return meta[key].decode()
    if b"twinsim" in meta:  # a JSON blob of twin-file facts
        try:
            value = json.loads(meta[b"twinsim"]).get("merchant_type")
        except (json.JSONDecodeError, AttributeError):
            value = None
        if isinstance(value, str):
            return value
    if "merchant_type" in table.columns and table.height:
        kinds = table["merchant_type"].unique().sort().to_list()
        if len(kinds) > 1:
            raise TwinsimError(f"{path}: twins of several merchant types {kinds}; pass "
                               "--merchant-type or split the file")
        return str(kinds[0])
    return None


def load_twins(twins: Path | None, merchant_type: str | None, *, demo: int = 20_000,
               seed: int = 0) -> TwinParams:
    """TwinParams from a twins file (or ``demo`` persona twins when ``twins`` is None)."""
    if twins is None:
        return TwinParams.synthetic(demo, merchant_type or "grocery", seed=seed)
    try:
        table = pl.read_parquet(twins)
        found = twins_merchant_type(twins, table)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise TwinsimError(f"{twins}: cannot read twins: {exc}") from None
    mtype = merchant_type or found
    if mtype is None:
        raise TwinsimError(f"{twins}: the file records no merchant type; pass --merchant-type")
    if table.height == 0:
        raise TwinsimError(f"{twins}: no twins in the file")
    return params_from_twins(table, mtype, seed=seed)


def _fail(exc: BaseException) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@contextmanager
def _errors() -> Iterator[None]:
    """Expected errors become one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except (TwinsimError, ValueError, OSError) as exc:
        raise _fail(exc) from None


def _check(days: int, replications: int) -> None:
    if days <= 0:
        raise TwinsimError(f"--days {days}: the horizon must be a positive number of days")
    if replications < 2:
        raise TwinsimError(f"--replications {replications}: need >= 2 for an interval")


def _cell(e: Estimate) -> str:
    if math.isnan(e.mean):
        return "—"
    if math.isnan(e.low):
        return f"{e.mean:,.3g}"
    return f"{e.mean:,.4g}  [{e.low:,.4g}, {e.high:,.4g}]"


def simulate_command(
    offer: OfferOpt, twins: TwinsOpt = None, demo: DemoOpt = 20_000,
    merchant_type: TypeOpt = None, days: DaysOpt = 90, replications: RepsOpt = 10,
    seed: SeedOpt = 0,
    segments: Annotated[str | None, typer.Option(
        "--segments", help="Break results down by this twin attribute.")] = None,
    engine: Annotated[str, typer.Option(help="vectorised or reference.")] = "vectorised",
    as_json: JsonOpt = False,
) -> None:
    """Trial an offer on twins: treatment vs control, with 95% confidence intervals."""
    with _errors():
        _check(days, replications)
        params = load_twins(twins, merchant_type, demo=demo, seed=seed)
        o = load_offer(offer, merchant_type=params.merchant_type)
        res = run_experiment(params, o, days=days, replications=replications, seed=seed,
                             engine=engine, segments=segments)
    if as_json:
        d = res.to_dict()
        d.pop("daily")
        d["merchant_type"] = params.merchant_type
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{o.name}: {params.n:,} twins, {days} days, {replications} reps")
    table.add_column("metric")
    for seg in ("all", *res.segments):
        table.add_column(seg, justify="right")
    for k, e in res.overall.items():
        table.add_row(k, _cell(e), *(_cell(m[k]) for m in res.segments.values()))
    Console().print(table)


def forecast_command(twins: TwinsOpt = None, demo: DemoOpt = 20_000,
                     merchant_type: TypeOpt = None, days: DaysOpt = 90,
                     replications: RepsOpt = 20, seed: SeedOpt = 0,
                     as_json: JsonOpt = False) -> None:
    """Business as usual: transactions, revenue, active customers, with 95% intervals.

    A transaction is a customer's purchase day; intervals are prediction intervals.
    """
    with _errors():
        _check(days, replications)
        params = load_twins(twins, merchant_type, demo=demo, seed=seed)
        fc = forecast(params, days=days, replications=replications, seed=seed)
    d: dict[str, Any] = {"merchant_type": params.merchant_type, "n_twins": fc.n_twins,
                         "days": days, "replications": replications, "seed": seed,
                         "transactions": fc.transactions.to_dict(),
                         "revenue": fc.revenue.to_dict(), "margin": fc.margin.to_dict(),
                         "active_customers": fc.active_at_horizon.to_dict()}
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    table = Table(title=f"Forecast: {fc.n_twins:,} twins, {days} days (95% PI)")
    table.add_column("metric")
    table.add_column("forecast", justify="right")
    for k in ("transactions", "revenue", "margin"):
        table.add_row(k, _cell(getattr(fc, k)))
    table.add_row("active_customers", _cell(fc.active_at_horizon))
    Console().print(table)


def sweep_command(
    offer: OfferOpt, twins: TwinsOpt = None, demo: DemoOpt = 20_000,
    merchant_type: TypeOpt = None,
    discounts: Annotated[str, typer.Option(help="Percent values, e.g. 5,10,20.")] = "10",
    cohorts: Annotated[str, typer.Option(
        help="Cohorts separated by ';' (filters in one cohort by ','), 'all' = everybody; "
             "each replaces the base offer's target.")] = "all",
    durations: Annotated[str, typer.Option(help="Offer durations in days, e.g. 14,30.")] = "30",
    days: DaysOpt = 90, replications: RepsOpt = 5, seed: SeedOpt = 0,
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    out: Annotated[Path | None, typer.Option("--out", help="Write the table as CSV.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a grid of offer variants (discount × cohort × duration) in parallel processes."""
    with _errors():
        _check(days, replications)
        if processes < 1:
            raise TwinsimError(f"--processes {processes}: need at least 1")
        params = load_twins(twins, merchant_type, demo=demo, seed=seed)
        base = load_offer(offer, merchant_type=params.merchant_type)
        cells = sweep_cells(base, params, discounts=parse_numbers(discounts, "--discounts"),
                            cohorts=parse_cohorts(cohorts),
                            durations=parse_numbers(durations, "--durations"), days=days)
        with _progress(len(cells), quiet=as_json) as tick:
            res = run_sweep(params, base, cells, days=days, replications=replications,
                            seed=seed, processes=processes, on_done=lambda _c: tick())
        frame = res.to_polars()
        if out is not None:
            frame.write_csv(out)
    if as_json:
        typer.echo(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
        return
    _sweep_table(frame)


@contextmanager
def _progress(total: int, *, quiet: bool) -> Iterator[Callable[[], None]]:
    if quiet:
        yield lambda: None
        return
    bar = Progress("sweep", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=False)
    with bar:
        task = bar.add_task("cells", total=total)
        yield lambda: bar.advance(task)


def _ci(row: dict[str, Any], k: str, fmt: str) -> str:
    m, lo, hi = row[k], row[f"{k}_low"], row[f"{k}_high"]
    if m is None or math.isnan(m):
        return "—"
    if lo is None or math.isnan(lo):
        return format(m, fmt)
    return f"{format(m, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _sweep_table(frame: pl.DataFrame) -> None:
    table = Table(title="Sweep (95% CIs)")
    for col in ("discount %", "cohort", "days", "targeted", "redeem", "incremental margin SEK",
                "ROI"):
        table.add_column(col, justify="left" if col == "cohort" else "right")
    for r in frame.iter_rows(named=True):
        table.add_row(f"{r['discount']:g}", r["cohort"], str(r["duration"]), f"{r['targeted']:,}",
                      f"{r['redemption_rate']:.1%}", _ci(r, "incremental_margin", ",.0f"),
                      _ci(r, "roi", ".2f"))
    Console().print(table)
