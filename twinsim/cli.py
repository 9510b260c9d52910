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


_register()


def main() -> None:
    app()
