"""``twinsim evaluate uplift`` and ``twinsim evaluate validity``: thin wiring to
:mod:`twinsim.evaluation` (registered on the ``evaluate`` group in :mod:`twinsim.cli`).

Both spend budget only on a scratch copy of the owner's ledger unless ``--no-scratch`` is
given; ``--epsilon inf`` is the non-private mode (no noise, no ledger) that isolates the
model's own error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from twinsim.errors import TwinsimError

__all__ = ["uplift_command", "validity_command"]

WorldOpt = Annotated[Path, typer.Option("--world", help="World folder (with nature's _truth).")]
EpsOpt = Annotated[str, typer.Option("--epsilon", help="Privacy loss ε of the release; 'inf' = "
                                     "non-private mode (no noise, no ledger).")]
DaysOpt = Annotated[int, typer.Option("--days", help="Horizon in days.")]
RepsOpt = Annotated[int, typer.Option("--replications", help="Synthesis+simulation rounds.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of twins, simulation and truth.")]
ScratchOpt = Annotated[bool, typer.Option(
    "--scratch/--no-scratch", help="Charge a scratch copy of the owner's ledger (default) or "
    "the owner's real ledger.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuickOpt = Annotated[bool, typer.Option(
    "--quick-fit", help="Rougher, much faster synthesis (16 classes, 200 steps): smoke runs.")]
QUICK_FIT = {"classes": (16,), "steps": 200}


def _epsilon(text: str) -> float:
    try:
        eps = float(text)
    except ValueError:
        raise TwinsimError(f"--epsilon {text!r}: not a number (e.g. 1, 0.5 or inf)") from None
    if not eps > 0:
        raise TwinsimError(f"--epsilon {text!r}: must be > 0 (or inf)")
    return eps


def _finite(obj: Any) -> Any:
    """``obj`` with non-finite floats as None (JSON has no NaN or infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _money(v: float) -> str:
    return "—" if not math.isfinite(v) else f"{v:,.0f}"


def _rows_table(rows: list, title: str) -> Table:  # type: ignore[type-arg]
    t = Table(title=title)
    for col in ("merchant", "offer", "targeted", "true profit", "predicted [95% PI]",
                "true margin", "pred margin", "covered"):
        t.add_column(col, justify="left" if col in ("merchant", "offer") else "right")
    for r in rows:
        t.add_row(r.merchant_id, r.offer, f"{r.targeted_real:,}", _money(r.true_profit),
                  f"{_money(r.pred_profit)} [{_money(r.pred_low)}, {_money(r.pred_high)}]",
                  _money(r.true_margin), _money(r.pred_margin), "yes" if r.covered else "no")
    return t


def uplift_command(world: WorldOpt,
                   merchant: Annotated[str, typer.Option("--merchant", help="Owner id.")],
                   offer: Annotated[Path, typer.Option("--offer", help="Offer JSON/YAML.")],
                   epsilon: EpsOpt = "1", days: DaysOpt = 90, replications: RepsOpt = 8,
                   seed: SeedOpt = 0, scratch: ScratchOpt = True, quick_fit: QuickOpt = False,
                   as_json: JsonOpt = False) -> None:
    """Predicted (twins) vs true (nature) incremental profit of one offer for one owner."""
    from retail.offers import load_offer
    from twinsim.evaluation import evaluate_uplift

    try:
        eps = _epsilon(epsilon)
        mtype = json.loads((world / merchant / "merchant.json").read_text())["merchant_type"]
        o = load_offer(offer, merchant_type=mtype)
        res = evaluate_uplift(world, merchant, o, epsilon=eps, days=days,
                              replications=replications, seed=seed, scratch=scratch,
                              fit_options=QUICK_FIT if quick_fit else None)
    except (TwinsimError, ValueError, OSError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
        return
    Console().print(_rows_table([res], f"Uplift at ε={epsilon} over {days} days"))


def validity_command(world: WorldOpt, epsilon: EpsOpt = "1",
                     suite: Annotated[Path, typer.Option(
                         "--suite", help="Suite JSON listing offers and merchants.")] = Path(
                         "offers/suite.json"),
                     days: DaysOpt = 90, replications: RepsOpt = 8, seed: SeedOpt = 0,
                     repeats: Annotated[int, typer.Option(
                         "--repeats", help="Independent releases at ε (scratch ledgers): one "
                         "release is one draw of its DP noise; >1 adds a pooled summary.")] = 1,
                     scratch: ScratchOpt = True, quick_fit: QuickOpt = False,
                     as_json: JsonOpt = False) -> None:
    """The validity suite: each offer's true vs predicted uplift, then a summary.

    The summary has median_rel_error, ci_coverage and spearman.

    With --repeats N: one report per release, a pooled summary and per-offer DP spread.
    """
    from rich.progress import Progress

    from twinsim.evaluation import evaluate_repeats, evaluate_suite, load_suite, pool_releases

    try:
        eps = _epsilon(epsilon)
        entries = load_suite(suite)
        if repeats > 1 and not scratch:
            raise TwinsimError("--repeats > 1 spends budget once per release: only on "
                               "scratch ledgers (drop --no-scratch)")
        fit = QUICK_FIT if quick_fit else None
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("validity suite", total=len(entries) * max(repeats, 1))
            done = lambda _row: bar.advance(task)  # noqa: E731
            reps = (evaluate_repeats(world, entries, epsilon=eps, repeats=repeats, days=days,
                                     replications=replications, seed=seed, fit_options=fit,
                                     on_done=done) if repeats != 1 else
                    [evaluate_suite(world, entries, epsilon=eps, days=days,
                                    replications=replications, seed=seed, scratch=scratch,
                                    fit_options=fit, on_done=done)])
    except (TwinsimError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    pooled = pool_releases(reps) if len(reps) > 1 else None
    if as_json:
        out = (reps[0].to_dict() if pooled is None else
               {"epsilon": eps, "repeats": len(reps), "pooled": _finite(pooled),
                "releases": [_finite(r.to_dict()) for r in reps]})
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    console = Console()
    for i, rep in enumerate(reps, start=1):
        label = f" (release {i}/{len(reps)})" if len(reps) > 1 else ""
        console.print(_rows_table(list(rep.rows), f"Validity at ε={epsilon}{label} over "
                                                  f"{days} days"))
        console.print(" ".join(f"{k}={v:.3g}" for k, v in rep.summary.items()))
    if pooled is not None:
        console.print("pooled: " + " ".join(f"{k}={v:.3g}"
                                            for k, v in pooled["summary"].items()))
