"""``twinsim world ...`` commands."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

world_app = typer.Typer(help="Generate and load merchant worlds.", no_args_is_help=True)


def _parse_now(now: str | None) -> datetime | date | None:
    if now is None:
        return None
    try:
        return date.fromisoformat(now) if len(now) == 10 else datetime.fromisoformat(now)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date/time: {now!r}", param_hint="--now") from None


def _fail(message: str, as_json: bool = False, offences: list | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": message, "offences": offences or []},
                              ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(message, err=True)
    raise typer.Exit(code=1)


def _print_report(report: dict) -> None:
    typer.echo(f"{report['merchant_id']} ({report['source']})")
    typer.echo(f"  {'table':<13} {'input':>10} {'loaded':>10} {'quarantined':>12}  rules")
    for name, t in report["tables"].items():
        rules = ", ".join(f"{r}={n}" for r, n in t["by_rule"].items()) or "-"
        typer.echo(f"  {name:<13} {t['input_rows']:>10} {t['loaded_rows']:>10} "
                   f"{t['quarantined_rows']:>12}  {rules}")
        if t["dropped_columns"]:
            typer.echo(f"  {'':<13} dropped columns outside the model: {t['dropped_columns']}")
    if report["quarantine_dir"]:
        typer.echo(f"  quarantined rows written to {report['quarantine_dir']}")


_PATH_HELP = ("A merchant folder (merchant.json + four tables) or a world folder "
              "(world.json + merchant folders).")
_QUARANTINE_HELP = ("With --lenient: write <table>.quarantine.parquet and report.json here "
                    "(one sub-folder per merchant for a world).")
_NOW_HELP = "Treat this ISO date/time as 'now' for the future rule (default: the clock)."
_LENIENT_HELP = "Load the good rows and quarantine the bad ones instead of failing."
Lenient = Annotated[bool, typer.Option("--lenient", help=_LENIENT_HELP)]
Quarantine = Annotated[Path | None, typer.Option("--quarantine", help=_QUARANTINE_HELP)]
Now = Annotated[str | None, typer.Option("--now", help=_NOW_HELP)]


@world_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help=_PATH_HELP)],
    lenient: Lenient = False,
    quarantine: Quarantine = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Now = None,
    max_offences: Annotated[int, typer.Option(
        "--max-offences", min=1, help="How many offences a strict failure lists.")] = 20,
) -> None:
    """Validate a merchant or world folder and print loaded/quarantined rows per table.

    PATH is a merchant folder (merchant.json + four tables) or a world folder (world.json).
    Strict by default: on any offence, exits with status 1 naming file, row, column, value
    and rule of the first offences.
    """
    from retail.load import is_merchant_folder, is_world_folder, load_merchant, load_world
    from twinsim.errors import DataValidationError

    if quarantine is not None and not lenient:
        raise typer.BadParameter("only meaningful with --lenient", param_hint="--quarantine")
    when = _parse_now(now)
    try:
        if is_world_folder(path):
            merchants = load_world(path, lenient=lenient, quarantine_dir=quarantine, now=when,
                                   max_offences=max_offences)
        elif is_merchant_folder(path):
            m = load_merchant(path, lenient=lenient, quarantine_dir=quarantine, now=when,
                              max_offences=max_offences)
            merchants = {m.info.merchant_id: m}
        else:
            _fail(f"{path}: neither a world folder (world.json) nor a merchant folder "
                  "(merchant.json)", as_json)
            return
    except DataValidationError as exc:
        _fail(str(exc), as_json, exc.offences)
        return
    reports = {mid: m.report.to_dict() for mid, m in merchants.items()}
    if as_json:
        typer.echo(json.dumps({"ok": True, "merchants": reports}, ensure_ascii=False,
                              indent=2))
        return
    for report in reports.values():
        _print_report(report)


_MAPPING_HELP = ("Mapping spec (YAML or JSON): column renames, value maps, date formats, "
                 "defaults; see retail/importer.py.")
_TYPE_HELP = "Merchant type (grocery, apparel, ...); overrides merchant.merchant_type."


@world_app.command("import-csv")
def import_csv_command(
    customers: Annotated[Path, typer.Option("--customers", help="Customers CSV export.")],
    transactions: Annotated[Path, typer.Option("--transactions",
                                               help="Transactions CSV export.")],
    mapping: Annotated[Path, typer.Option("--mapping", help=_MAPPING_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Merchant folder to write.")],
    merchant_type: Annotated[str | None, typer.Option("--merchant-type", help=_TYPE_HELP)] = None,
    campaigns: Annotated[Path | None, typer.Option("--campaigns",
                                                   help="Campaigns CSV (optional).")] = None,
    exposures: Annotated[Path | None, typer.Option("--exposures",
                                                   help="Exposures CSV (optional).")] = None,
    lenient: Lenient = False,
    quarantine: Quarantine = None,
    now: Now = None,
) -> None:
    """Import a merchant's own CSV exports into a validated merchant folder.

    Strict by default: nothing is written unless every row obeys the data model.
    """
    from retail.importer import import_csv
    from twinsim.errors import DataValidationError

    if lenient and quarantine is None:
        raise typer.BadParameter("--lenient needs --quarantine DIR so no row is lost",
                                 param_hint="--quarantine")
    try:
        merchant = import_csv(customers=customers, transactions=transactions, mapping=mapping,
                              merchant_type=merchant_type, out=out, campaigns=campaigns,
                              exposures=exposures, lenient=lenient, quarantine_dir=quarantine,
                              now=_parse_now(now))
    except DataValidationError as exc:
        _fail(str(exc))
        return
    except (ValueError, OSError, LookupError) as exc:
        _fail(f"import-csv: {exc}")
        return
    _print_report(merchant.report.to_dict())
    typer.echo(f"wrote {out}")


@world_app.command("cdnow")
def cdnow_command(
    out: Annotated[Path, typer.Option(
        "--out", help="World folder to write (kind 'cdnow', one merchant folder 'cdnow').")],
) -> None:
    """Write the real CDNOW data set (from the installed lifetimes wheel) as a world folder."""
    from retail.cdnow import write_cdnow_world

    try:
        report = write_cdnow_world(out)
    except FileNotFoundError as exc:
        _fail(str(exc))
        return
    typer.echo(f"CDNOW: {report.customers} customers, {report.rows} transactions "
               f"({report.first_date}..{report.last_date}, {report.currency}); "
               f"{report.zero_value_rows} $0 rows kept as promo, {report.same_day_rows} "
               f"rows share a customer-day with another row (kept). Wrote {out}")


_SCALE_HELP = ("World size: small (3k grocery_1 customers, for tests), medium (100k, ~10M "
               "grocery_1 rows), large (500k, ~50M rows).")


@world_app.command("generate")
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="World folder to write.")],
    scale: Annotated[str, typer.Option("--scale", help=_SCALE_HELP)] = "small",
    seed: Annotated[int, typer.Option("--seed", help="Seed: the same seed gives "
                                      "byte-identical tables.")] = 7,
) -> None:
    """Generate the synthetic ground-truth world ("nature"): people, seven merchants, a year
    of purchases, past campaigns with randomised control groups, and the hidden truth in
    OUT/_truth (personas, parameters, end state) for counterfactuals.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from retail.world import generate_world
    from retail.world.personas import MERCHANTS, SCALES

    if scale not in SCALES:
        raise typer.BadParameter(f"unknown scale {scale!r}; use one of {sorted(SCALES)}",
                                 param_hint="--scale")
    console = Console()
    with Progress(TextColumn("{task.description:<10}"), BarColumn(),
                  TextColumn("{task.completed:>3.0f}/{task.total:.0f} days"),
                  TimeElapsedColumn(), console=console) as bar:
        tasks = {m.merchant_id: bar.add_task(m.merchant_id, total=365) for m in MERCHANTS}
        summaries = generate_world(out, scale=scale, seed=seed, progress=lambda mid, done, _:
                                   bar.update(tasks[mid], completed=done))
    table = Table(title=f"World {out} (scale {scale}, seed {seed})")
    for col in ("merchant", "type", "customers", "rows", "campaigns", "exposures"):
        table.add_column(col, justify="left" if col in ("merchant", "type") else "right")
    for s in summaries:
        table.add_row(s.merchant_id, s.merchant_type, f"{s.customers:,}", f"{s.transactions:,}",
                      str(s.campaigns), f"{s.exposures:,}")
    console.print(table)
