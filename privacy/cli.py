"""``twinsim ledger …``: create, show, verify and export an owner's privacy ledger. Thin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from privacy.audit import export_csv, export_json, verify_ledger
from privacy.budget import LEDGER_FILE, PrivacyBudget
from twinsim.errors import PrivacyError

__all__ = ["ledger_app"]

ledger_app = typer.Typer(help="An owner's privacy ledger: init, show, verify, export.",
                         no_args_is_help=True)

Owner = Annotated[Path, typer.Option("--owner", help="Owner (merchant) folder with merchant.json.")]
LedgerPath = Annotated[Path | None, typer.Option(
    "--ledger", help=f"Ledger file (default: <owner>/{LEDGER_FILE}).")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]


def _budget(owner: Path, ledger: Path | None) -> PrivacyBudget:
    try:
        return PrivacyBudget.for_owner(owner, ledger_path=ledger)
    except PrivacyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@ledger_app.command("init")
def init(owner: Owner, ledger: LedgerPath = None,
         cap_epsilon: Annotated[float, typer.Option(help="Cap on ε per period.")] = 2.0,
         delta: Annotated[float, typer.Option(help="The owner's δ.")] = 1e-8,
         period: Annotated[str, typer.Option(help="First period (e.g. a year).")] = "2025",
         ) -> None:
    """Create the owner's ledger and open its first period."""
    try:
        budget = PrivacyBudget.init_owner(owner, period=period, cap_epsilon=cap_epsilon,
                                          delta=delta, ledger_path=ledger)
    except (PrivacyError, ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    s = budget.state()
    typer.echo(f"ledger {s.ledger_path}: owner {s.owner} ({s.owner_pseudonym}), period "
               f"{s.period}, cap ε={s.cap_epsilon:g} at δ={s.delta:g}")


@ledger_app.command("open-period")
def open_period(owner: Owner,
                period: Annotated[str, typer.Option(help="The new period's label.")],
                ledger: LedgerPath = None,
                cap_epsilon: Annotated[float | None, typer.Option(help="Default: same.")] = None,
                delta: Annotated[float | None, typer.Option(help="Default: same.")] = None,
                requester: Annotated[str, typer.Option(help="Who opens it (logged).")] = "cli",
                ) -> None:
    """Open a new accounting period (an explicit, logged act)."""
    budget = _budget(owner, ledger)
    try:
        entry = budget.open_period(period, cap_epsilon=cap_epsilon, delta=delta,
                                   requester=requester)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"opened period {entry.period} (entry {entry.entry_id})")


@ledger_app.command("show")
def show(owner: Owner, ledger: LedgerPath = None,
         as_json: AsJson = False) -> None:
    """Cap, spent and remaining ε, and the entries."""
    budget = _budget(owner, ledger)
    state = budget.state().to_dict()
    entries = [e.to_dict() for e in budget.ledger.entries()]
    if as_json:
        typer.echo(json.dumps({**state, "entries": entries}, ensure_ascii=False))
        return
    typer.echo(f"owner {state['owner']} ({state['owner_pseudonym']}), period {state['period']}: "
               f"spent ε={state['spent_epsilon']:.6g} of {state['cap_epsilon']:g} at "
               f"δ={state['delta']:g}; remaining {state['remaining_epsilon']:.6g}")
    for e in entries:
        typer.echo(f"  #{e['entry_id']:>4} {e['created_at'][:19]} {e['kind']:<11} "
                   f"{e['mechanism']:<8} ε={e['epsilon']:<.6g} spent={e['spent_epsilon']:.6g} "
                   f"{e['requester']}: {e['purpose']}")


@ledger_app.command("verify")
def verify(owner: Owner, ledger: LedgerPath = None,
           as_json: AsJson = False) -> None:
    """Recompute the hash chain and totals; exit 1 naming the first broken entry."""
    budget = _budget(owner, ledger)
    report = verify_ledger(budget.ledger.path)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    elif report.ok:
        typer.echo(f"ok: {report.n_entries} entries, chain and totals hold; spent ε="
                   f"{report.spent_epsilon:.6g}; charged but never released: "
                   f"{list(report.unreleased_charges) or 'none'}")
    else:
        typer.echo(f"BROKEN at entry {report.first_broken_entry}:", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
    if not report.ok:
        raise typer.Exit(1)


@ledger_app.command("export")
def export(owner: Owner, ledger: LedgerPath = None,
           fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
           out: Annotated[Path | None, typer.Option(help="File (default: stdout).")] = None,
           ) -> None:
    """Export the ledger for audit (JSON: head, verify report, entries; CSV: entries)."""
    budget = _budget(owner, ledger)
    if fmt not in ("json", "csv"):
        typer.echo(f"error: --format must be json or csv (got {fmt!r})", err=True)
        raise typer.Exit(2)
    text = export_json(budget.ledger.path) if fmt == "json" else export_csv(budget.ledger.path)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out} ({len(text):,} characters)")

