"""The ``twinsim`` command. Thin: each sub-command wires options to package functions."""

from __future__ import annotations

import typer

from twinsim import __version__

app = typer.Typer(
    name="twinsim",
    help="Privacy-first federated digital-twin simulator for retail loyalty programmes.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"twinsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """twinsim: trial loyalty offers on digital twins built from DP releases."""


def _register() -> None:
    # Sub-command groups live next to the package they drive.
    from retail.cli import world_app

    app.add_typer(world_app, name="world")
    from privacy.cli import ledger_app

    app.add_typer(ledger_app, name="ledger")
    from app_pages.cli import app_command

    app.command("app")(app_command)
    from simulation.cli import forecast_command, simulate_command, sweep_command

    app.command("simulate")(simulate_command)
    app.command("forecast")(forecast_command)
    app.command("sweep")(sweep_command)
    from federation.cli import federate

    app.command("federate")(federate)
    from twins.cli import evaluate_app, release_command, twins_command

    app.command("release")(release_command)
    app.command("twins")(twins_command)
    app.add_typer(evaluate_app, name="evaluate")
    from twinsim.evaluate_cli import uplift_command, validity_command

    evaluate_app.command("uplift")(uplift_command)
    evaluate_app.command("validity")(validity_command)
    from twinsim.demo_cli import demo_command

    app.command("demo")(demo_command)


_register()


def main() -> None:
    app()
