"""Every command of ``twinsim`` answers ``--help`` with a description."""

from __future__ import annotations

import click
import typer
from typer.testing import CliRunner

from twinsim.cli import app


def _commands(group: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    if isinstance(group, click.Group):
        for name, cmd in group.commands.items():
            found += _commands(cmd, (*prefix, name))
    return found


def test_every_command_has_help() -> None:
    root = typer.main.get_command(app)
    paths = _commands(root)
    assert len(paths) > 1, "the CLI registered no sub-commands"
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output
        cmd = root
        for name in path:
            assert isinstance(cmd, click.Group)
            cmd = cmd.commands[name]
        assert (cmd.help or cmd.short_help or "").strip(), f"twinsim {' '.join(path)} has no help"


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("twinsim ")
