"""``twinsim demo``: the whole story in one command. Thin: wires options to
:func:`twinsim.demo.prepare_demo` and :func:`twinsim.demo.run_demo` and prints with rich.

Progress goes to stderr, tables (or ``--json``) to stdout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from twinsim.demo import DEMO_EPSILON

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from twinsim.demo import DemoResult, DemoState, Progress

__all__ = ["demo_command"]

_STAGES = {"world": "world", "releases": "releases (ledger charges)",
           "fitting": "fitting twin models", "twins": "twins", "offers": "offers"}


def _tracker(bar: RichProgress) -> Progress:
    """A :data:`twinsim.demo.Progress` callback driving one rich task per stage."""
    tasks: dict[str, TaskID] = {}

    def tell(stage: str, done: int, total: int, message: str) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(_STAGES.get(stage, stage), total=total)
        bar.update(tasks[stage], completed=done, total=total,
                   description=f"{_STAGES.get(stage, stage):<26} {message}")

    return tell


def _owners_table(state: DemoState) -> object:
    from rich.table import Table

    t = Table(title="Releases: one per owner, charged to its ledger before it leaves")
    for col in ("owner", "type", "pseudonym", "this run", "ε release", "ε spent", "ε left"):
        t.add_column(col, justify="right" if col.startswith("ε") else "left")
    for o in state.owners:
        t.add_row(o.merchant_id, o.merchant_type, o.owner,
                  "charged" if o.charged_now else "kept", f"{o.epsilon:.3g}",
                  f"{o.spent_epsilon:.3f}", f"{o.remaining_epsilon:.3f} of {o.cap_epsilon:g}")
    return t


def _ci(mean: float, low: float, high: float, fmt: str) -> str:
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return format(mean, fmt)
    return f"{format(mean, fmt)} [{format(low, fmt)}, {format(high, fmt)}]"


def _results_table(result: DemoResult) -> object:
    from rich.table import Table

    t = Table(title=f"{result.merchant_id}: {result.days}-day trials, "
                    f"{result.replications} replications, 95% CIs")
    cols = (("redemption_rate", "redemption", ".1%"),
            ("incremental_revenue", "incr. revenue (SEK)", ",.0f"),
            ("incremental_margin", "incr. margin (SEK)", ",.0f"),
            ("roi", "ROI", ".2f"))
    t.add_column("offer", ratio=2, min_width=16)
    t.add_column("reach", justify="right")
    for _, label, _ in cols:
        t.add_column(label, justify="right")
    for row in result.table().iter_rows(named=True):
        t.add_row(row["offer"], f"{row['reach']:.0f}",
                  *(_ci(row[k], row[f"{k}_low"], row[f"{k}_high"], fmt) for k, _, fmt in cols))
    return t


def _print_story(console: Console, state: DemoState, result: DemoResult | None,
                 world: Path) -> None:
    console.print(_owners_table(state))
    console.print(f"Twin models: {len(state.owners)} releases fitted with {dict(state.fit)} "
                  f"({state.seconds.get('fitting', 0.0):.0f} s; cached on disk, the app "
                  "reuses them).")
    if result is not None:
        sizes = ", ".join(f"{k}: ~{v:.0f}" for k, v in result.sizes.items())
        twins = ", ".join(f"{v} from {k}" for k, v in result.twins.items())
        console.print(f"Population: {result.cohort}\nDP-estimated sizes: {sizes}\n"
                      f"Twins: {twins}")
        for note in result.notes:
            console.print(f"[yellow]note:[/yellow] {note}")
        console.print(_results_table(result))
    console.print(f"Open the app: [bold]make run[/bold]  or  [bold]twinsim app --world "
                  f"{world}[/bold]  → http://localhost:8501")


def demo_command(
    world: Annotated[Path, typer.Option("--world", help="World folder (made if missing).")
                     ] = Path("data/demo"),
    seed: Annotated[int, typer.Option("--seed", help="World and simulation seed.")] = 7,
    prepare_only: Annotated[bool, typer.Option(
        "--prepare-only", help="Only prepare the world, releases and fits (for the app).")
    ] = False,
    epsilon: Annotated[float, typer.Option(
        "--epsilon", help="ε each owner's one release spends (at its ledger's δ).")
    ] = DEMO_EPSILON,
    twins: Annotated[int, typer.Option("--twins", help="Twins in the deli's trials.")] = 5000,
    days: Annotated[int, typer.Option("--days", help="Simulated days.")] = 90,
    replications: Annotated[int, typer.Option("--replications", help="Replications.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")
                       ] = False,
) -> None:
    """The whole story: world → DP releases (charged) → twins → three offers compared."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from twinsim.demo import prepare_demo, run_demo
    from twinsim.errors import TwinsimError

    err = Console(stderr=True)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err) as bar:
            tell = _tracker(bar)
            state = prepare_demo(world, seed=seed, epsilon=epsilon, progress=tell)
            result = None if prepare_only else run_demo(
                state, n_twins=twins, days=days, replications=replications, seed=seed,
                progress=tell)
    except (TwinsimError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"prepared": state.to_dict(),
                               "result": None if result is None else result.to_dict()},
                              ensure_ascii=False, default=str))
        return
    _print_story(Console(), state, result, world)
