"""Simulation Studio, driven with AppTest: sweep heat map, forecast, reproducible export."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from browser.worlds import prepared_world
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app_pages import trials
from app_pages.cli import WORLD_ENV
from twinsim.cli import app as cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def studio(monkeypatch: pytest.MonkeyPatch, small_world: Path,
           tmp_path_factory: pytest.TempPathFactory) -> AppTest:
    monkeypatch.setenv(WORLD_ENV, str(prepared_world(small_world,
                                                     tmp_path_factory.getbasetemp())))
    monkeypatch.setenv(trials.SYNTHESISER_ENV, "independent")
    monkeypatch.setenv("TWINSIM_CACHE", str(tmp_path_factory.getbasetemp() / "model_cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/studio.py").run()
    at.radio(key="studio_source").set_value("demo").run()
    at.number_input(key="studio_n").set_value(800)
    at.number_input(key="studio_h").set_value(30)
    at.number_input(key="studio_reps").set_value(2)
    return at.run()


def test_sweep_draws_a_roi_heat_map(studio: AppTest) -> None:
    studio.multiselect(key="studio_discounts").set_value([10, 30])
    studio.multiselect(key="studio_cohorts").set_value(["everyone", "baby"])
    studio.button(key="studio_sweep").click().run()
    assert not studio.exception and not studio.error
    grid = studio.dataframe[0].value
    assert len(grid) == 4 and set(grid["cohort"]) == {"everyone", "baby"}
    assert grid["roi"].notna().all()
    baby = grid[grid["cohort"] == "baby"]
    assert (baby["targeted"] < grid[grid["cohort"] == "everyone"]["targeted"].max()).all()
    assert studio.get("vega_lite_chart")
    # a deeper discount costs more per krona of margin on the same twins
    everyone = grid[grid["cohort"] == "everyone"].set_index("discount")
    assert everyone.loc[30.0, "roi"] < everyone.loc[10.0, "roi"]


def test_forecast(studio: AppTest) -> None:
    studio.button(key="studio_forecast").click().run()
    assert not studio.exception and not studio.error
    cards = {m.label: m.value for m in studio.metric}
    assert {"Revenue", "Margin", "Purchase days", "Customers at the end"} <= set(cards)
    assert 0 < float(cards["Customers at the end"].replace(" ", "")) <= 800


def test_export_reproduces_the_run_from_the_cli(studio: AppTest, tmp_path: Path) -> None:
    command, config = studio.code[0].value, json.loads(studio.code[1].value)
    assert config["days"] == 30 and config["replications"] == 2
    assert config["offer"]["kind"] == "discount" and config["population"]["n_twins"] == 800
    studio.button(key="studio_run").click().run()
    assert not studio.exception and not studio.error
    assert [b.label for b in studio.get("download_button")][-3:] == [
        "Results CSV", "Results PARQUET", "Results JSON"]
    app_roi = studio.session_state["studio_result"].overall["roi"].mean
    # the exported files + the shown command give the same answer from the CLI
    pop = trials.Population.from_key(json.dumps(config["population"]))
    (tmp_path / "offer.json").write_text(json.dumps(config["offer"]))
    (tmp_path / "twins.parquet").write_bytes(trials.twins_parquet(pop, config["seed"]))
    args = [*shlex.split(command)[1:], "--json"]
    args = [str(tmp_path / a) if a in ("offer.json", "twins.parquet") else a for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overall"]["roi"]["mean"] == pytest.approx(app_roi)
