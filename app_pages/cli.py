"""``twinsim app``: start the Streamlit app, headless, on a world folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["APP_SCRIPT", "WORLD_ENV", "app_command", "streamlit_command"]

# The app reads its world folder from this variable (kept here so the CLI never imports
# streamlit just to start).
WORLD_ENV = "TWINSIM_WORLD"

APP_SCRIPT = Path(__file__).resolve().parent.parent / "app.py"


def streamlit_command(port: int, *, address: str | None = None) -> list[str]:
    """The ``streamlit run app.py`` command line the app runs with (also used by the tests)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
           "--server.headless", "true", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "none",
           "--client.toolbarMode", "minimal", "--server.fileWatcherType", "none",
           "--server.runOnSave", "false"]
    if address:
        cmd += ["--server.address", address]
    return cmd


def app_command(
    world: Annotated[Path, typer.Option("--world", help="World folder to open.")] = Path(
        "data/demo"),
    port: Annotated[int, typer.Option("--port", help="Port to serve the app on.")] = 8501,
    address: Annotated[str | None, typer.Option(
        "--address", help="Address to bind (default: all).")] = None,
) -> None:
    """Open the Streamlit app (Offer Lab, Simulation Studio, Privacy & Compliance)."""
    if not (world / "world.json").is_file():
        typer.echo(f"{world} is not a world folder (no world.json). Create one with "
                   f"`twinsim world generate --out {world} --scale small --seed 7`.", err=True)
        raise typer.Exit(2)
    env = {**os.environ, WORLD_ENV: str(world.resolve())}
    typer.echo(f"twinsim app on http://localhost:{port} (world {world})")
    cmd = streamlit_command(port, address=address)
    # Become the server (exec): Ctrl-C and kill reach streamlit itself, nothing is orphaned.
    os.execve(cmd[0], cmd, env)
