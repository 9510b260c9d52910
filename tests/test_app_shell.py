"""The app shell: navigation, the world picker, the ``twinsim app`` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser.worlds import bare_world
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app_pages.cli import WORLD_ENV, streamlit_command
from twinsim.cli import app as cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """Metadata only: enough for the overview page, nothing to simulate."""
    return bare_world(tmp_path / "world")


def _app(monkeypatch: pytest.MonkeyPatch, world: Path) -> AppTest:
    monkeypatch.setenv(WORLD_ENV, str(world))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)


def test_overview_lists_the_merchants(monkeypatch: pytest.MonkeyPatch, world: Path) -> None:
    at = _app(monkeypatch, world).run()
    assert not at.exception
    assert at.title[0].value == "twinsim"
    assert at.sidebar.text_input(key="world").value == str(world)
    shown = at.dataframe[0].value
    assert list(shown["merchant_id"]) == ["grocery_1", "pet_1"]
    assert "pet_shop" in set(shown["type"])


def test_a_missing_world_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _app(monkeypatch, tmp_path / "nowhere").run()
    assert not at.exception
    assert "does not exist" in at.warning[0].value
    assert "twinsim world generate" in at.warning[0].value


def test_the_world_can_be_changed_in_the_sidebar(monkeypatch: pytest.MonkeyPatch,
                                                 world: Path, tmp_path: Path) -> None:
    at = _app(monkeypatch, tmp_path / "nowhere").run()
    at.sidebar.text_input(key="world").set_value(str(world)).run()
    assert not at.warning and len(at.dataframe[0].value) == 2


def test_app_command_refuses_a_folder_without_a_world(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["app", "--world", str(tmp_path), "--port", "9"])
    assert result.exit_code == 2
    assert "not a world folder" in result.output


def test_streamlit_command_is_headless_on_the_port() -> None:
    cmd = streamlit_command(8765)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
