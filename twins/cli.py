"""``twinsim release``, ``twinsim twins`` and ``twinsim evaluate …``. Thin: wiring only.

``release`` runs at the data owner (reads raw data, charges the ledger); ``twins`` runs at
the hub (reads releases only); ``evaluate fidelity`` runs at the owner (compares twins with
the owner's real features).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from twinsim.errors import TwinsimError

__all__ = ["evaluate_app", "fidelity_command", "release_command", "twins_command"]

evaluate_app = typer.Typer(help="Evaluate twins: fidelity (and uplift, validity).",
                           no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]
Owner = Annotated[Path, typer.Option("--owner", help="Owner (merchant) folder.")]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _emit(payload: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload, sort_keys=True, default=str) if as_json else text)


def _ensure_ledger(owner: Path, init_ledger: bool) -> None:
    from privacy.budget import LEDGER_FILE, PrivacyBudget
    from retail.merchant import read_merchant_info

    if (owner / LEDGER_FILE).is_file():
        return
    if not init_ledger:
        _fail(f"{owner}: this owner has no privacy ledger yet. Create it first with "
              f"`twinsim ledger init --owner {owner}` (choose the cap there), or pass "
              "--init-ledger to create one with the default cap ε=2 per year at δ=1e-8.")
    period = str(read_merchant_info(owner).period_end.year)
    PrivacyBudget.init_owner(owner, period=period)
    typer.echo(f"created ledger {owner / LEDGER_FILE} (period {period}, cap ε=2, δ=1e-8)",
               err=True)


def release_command(
    owner: Owner,
    epsilon: Annotated[float, typer.Option("--epsilon", help="ε to spend (at the ledger's δ).")],
    out: Annotated[Path, typer.Option("--out", help="Release JSON file to write.")],
    requester: Annotated[str, typer.Option(help="Who asks (logged in the ledger).")] = "cli",
    purpose: Annotated[str, typer.Option(help="Why (logged).")] = "twin synthesis",
    no_campaigns: Annotated[bool, typer.Option("--no-campaigns",
                                               help="Release marginals only.")] = False,
    init_ledger: Annotated[bool, typer.Option(
        "--init-ledger", help="Create the ledger with the default cap if there is none.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Release an owner's DP marginals and campaign tables (charged to its ledger first)."""
    from privacy.budget import PrivacyBudget
    from twins.release import release_owner

    _ensure_ledger(owner, init_ledger)
    try:
        rel = release_owner(owner, epsilon=epsilon, requester=requester, purpose=purpose,
                            include_campaigns=not no_campaigns, out=out)
        state = PrivacyBudget.for_owner(owner).state()
    except (TwinsimError, ValueError) as exc:
        _fail(str(exc))
        return
    payload = {"release_id": rel.release_id, "out": str(out), "owner": rel.owner,
               "merchant_type": rel.merchant_type, "measurements": len(rel.measurements),
               "privacy_loss": dict(rel.privacy_loss), "ledger_entry_id": rel.ledger_entry_id,
               "spent_epsilon": state.spent_epsilon, "remaining_epsilon": state.remaining_epsilon,
               "cap_epsilon": state.cap_epsilon, "content_hash": rel.content_hash}
    _emit(payload, as_json,
          f"release {rel.release_id} -> {out}: {len(rel.measurements)} measurements, "
          f"ε={rel.privacy_loss['epsilon']:g} (ρ={rel.privacy_loss['rho']:.6g}); ledger: "
          f"spent ε={state.spent_epsilon:.6g} of {state.cap_epsilon:g}, remaining "
          f"{state.remaining_epsilon:.6g}")


def _fit_options(classes: str, steps: int | None) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if classes:
        try:
            opts["classes"] = tuple(int(k) for k in classes.split(","))
        except ValueError:
            _fail(f"--classes: expected comma-separated integers, got {classes!r}")
    if steps is not None:
        opts["steps"] = steps
    return opts


def twins_command(
    release: Annotated[list[Path], typer.Option("--release", help="Release JSON (repeat).")],
    n: Annotated[int, typer.Option("--n", help="Number of twins.")],
    seed: Annotated[int, typer.Option("--seed", help="Sampling and fitting seed.")],
    out: Annotated[Path, typer.Option("--out", help="Twins Parquet file to write.")],
    cohort: Annotated[str, typer.Option(
        "--cohort", help='Attribute filter, e.g. "pet=yes, organic_share>=high".')] = "",
    merchant_type: Annotated[list[str] | None, typer.Option(
        "--merchant-type", help="Only owners of this merchant type (repeat).")] = None,
    region: Annotated[list[str] | None, typer.Option(
        "--region", help="Only customers living here (repeat).")] = None,
    min_size: Annotated[float, typer.Option(help="Smallest cohort simulated.")] = 100.0,
    synthesiser: Annotated[str, typer.Option(help="mixture | independent")] = "mixture",
    classes: Annotated[str, typer.Option(help="Mixture: class counts tried, e.g. 16,32.")] = "",
    steps: Annotated[int | None, typer.Option(help="Mixture: optimiser steps.")] = None,
    cache: Annotated[Path | None, typer.Option(help="Model cache folder.")] = None,
    as_json: AsJson = False,
) -> None:
    """Synthesise twins from one or more releases (hub side), mixing owners by DP size."""
    from twins.hub import Cohort, read_release, twins_from_releases

    try:
        rels = [read_release(p) for p in release]
        spec = Cohort(merchant_types=tuple(merchant_type or ()), regions=tuple(region or ()),
                      where=cohort)
        twins = twins_from_releases(rels, n=n, seed=seed, cohort=spec, min_size=min_size,
                                    synthesiser=synthesiser,
                                    options=_fit_options(classes, steps), cache=cache)
        twins.write_parquet(out)
    except (TwinsimError, ValueError) as exc:
        _fail(str(exc))
        return
    by_owner = {str(k): int(v) for k, v in twins["owner"].value_counts().iter_rows()}
    _emit({"out": str(out), "n": twins.height, "by_owner": by_owner,
           "cohort": spec.describe()}, as_json,
          f"{twins.height} twins ({spec.describe()}) -> {out}; by owner: {by_owner}")


@evaluate_app.command("fidelity")
def fidelity_command(
    owner: Owner,
    twins: Annotated[Path, typer.Option("--twins", help="Twins Parquet file.")],
    cohort: Annotated[str, typer.Option(
        "--cohort", help="The attribute filter the twins were drawn for, if any.")] = "",
    region: Annotated[list[str] | None, typer.Option("--region", help="Likewise.")] = None,
    as_json: AsJson = False,
) -> None:
    """Twins vs the owner's real features: mean/max TVD of 1- and 2-way marginals."""
    import polars as pl

    from twins.evaluation import fidelity_report
    from twins.hub import Cohort
    from twins.release import owner_feature_table, owner_pseudonym

    try:
        table = pl.read_parquet(twins)
        real = owner_feature_table(owner)
        me = owner_pseudonym(owner)
        if "owner" in table.columns and me is not None and me in set(table["owner"]):
            table = table.filter(pl.col("owner") == me)
        where = Cohort(regions=tuple(region or ()), where=cohort).filter()
        report = fidelity_report(real, table, where=where)
    except (TwinsimError, ValueError, OSError) as exc:
        _fail(str(exc))
        return
    _emit(report, as_json, "\n".join(f"{k}: {v}" for k, v in report.items()))
