"""``twinsim world ...`` commands."""

from __future__ import annotations

import typer

world_app = typer.Typer(help="Generate and load merchant worlds.", no_args_is_help=True)
