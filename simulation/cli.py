"""``twinsim sim``: trial an offer or forecast business as usual on twins, from the shell.

Twins come from a Parquet file of attribute codes (``--twins``) or from the demo personas
(``--demo N``). The commands only wire arguments to :func:`run_experiment` / :func:`forecast`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from retail.offers import load_offer
from simulation.experiment import run_experiment
from simulation.forecast import forecast
from simulation.params import TwinParams, params_from_twins
from twinsim.errors import TwinsimError

__all__ = ["sim_app"]

sim_app = typer.Typer(help="Simulate twins: offer trials and forecasts.", no_args_is_help=True)

TwinsOpt = Annotated[Path | None, typer.Option("--twins", help="Parquet of twin attribute codes")]
DemoOpt = Annotated[int, typer.Option("--demo", help="use N demo-persona twins instead")]
TypeOpt = Annotated[str, typer.Option("--merchant-type", help="merchant type of the twins")]


def _params(twins: Path | None, demo: int, merchant_type: str, seed: int) -> TwinParams:
    if twins is None:
        return TwinParams.synthetic(demo, merchant_type, seed=seed)
    try:
        table = pl.read_parquet(twins)
    except OSError as exc:
        raise typer.BadParameter(f"{twins}: cannot read twins: {exc}") from None
    return params_from_twins(table, merchant_type, seed=seed)


@sim_app.command("trial")
def trial(offer: Annotated[Path, typer.Argument(help="offer JSON/YAML file")],
          twins: TwinsOpt = None, demo: DemoOpt = 20_000, merchant_type: TypeOpt = "grocery",
          days: int = 90, replications: int = 10, seed: int = 0,
          segments: Annotated[str | None, typer.Option(help="segment attribute")] = None,
          engine: str = "vectorised",
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Treatment vs control of OFFER on the twins, with 95% confidence intervals."""
    try:
        o = load_offer(offer, merchant_type=merchant_type)
        res = run_experiment(_params(twins, demo, merchant_type, seed), o, days=days,
                             replications=replications, seed=seed, engine=engine,
                             segments=segments)
    except (TwinsimError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(res.to_json())
        return
    with pl.Config(tbl_rows=200, tbl_hide_dataframe_shape=True, float_precision=3):
        typer.echo(res.to_polars())


@sim_app.command("forecast")
def forecast_cmd(twins: TwinsOpt = None, demo: DemoOpt = 20_000,
                 merchant_type: TypeOpt = "grocery", days: int = 90, replications: int = 20,
                 seed: int = 0) -> None:
    """Business as usual: purchase days, revenue and customers at the horizon (JSON)."""
    try:
        fc = forecast(_params(twins, demo, merchant_type, seed), days=days,
                      replications=replications, seed=seed)
    except (TwinsimError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    d = fc.to_dict()
    d.pop("daily")
    typer.echo(json.dumps(d, indent=2))
