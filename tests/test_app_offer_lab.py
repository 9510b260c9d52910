"""Offer Lab, driven with AppTest on the small world (some owners made a twin release)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from browser.worlds import prepared_world
from streamlit.testing.v1 import AppTest

from app_pages import trials
from app_pages.cli import WORLD_ENV

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepared_world(small_world, tmp_path_factory.getbasetemp())


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, world: Path,
        tmp_path_factory: pytest.TempPathFactory) -> AppTest:
    monkeypatch.setenv(WORLD_ENV, str(world))
    monkeypatch.setenv(trials.SYNTHESISER_ENV, "independent")  # fast fits in tests
    monkeypatch.setenv("TWINSIM_CACHE", str(tmp_path_factory.getbasetemp() / "model_cache"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/offer_lab.py").run()
    assert not at.exception
    # small, quick trials: 600 twins, 30 days, 2 replications
    at.number_input(key="lab_n").set_value(600)
    at.number_input(key="lab_h").set_value(30)
    at.number_input(key="lab_reps").set_value(2)
    return at.run()


def _kpis(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_own_twins_discount_trial(lab: AppTest) -> None:
    assert lab.selectbox(key="lab_merchant").value.endswith("grocery_1")
    assert lab.radio(key="lab_source").value == "own"
    size = float(_kpis(lab)["Estimated cohort size (DP)"].replace(" ", ""))
    assert 2000 < size < 4000  # grocery_1 has 3000 customers, most consent to analytics
    lab.number_input(key="lab_discount_pct").set_value(15)
    lab.button(key="lab_run").click().run()
    assert not lab.exception and not lab.error
    kpis = _kpis(lab)
    assert {"Redemption", "Incremental revenue", "Incremental margin", "ROI"} <= set(kpis)
    assert 0 < float(kpis["Redemption"].rstrip("%")) <= 100
    assert any("95% CI" in c.value for c in lab.caption)
    assert lab.get("vega_lite_chart"), "the daily chart is missing"
    seg = lab.dataframe[0].value
    assert set(seg["segment"]) <= {"budget", "standard", "premium"} and len(seg) >= 2
    assert [b.label for b in lab.get("download_button")] == [
        "Download CSV", "Download PARQUET", "Download JSON"]


def test_cohort_from_other_merchants_is_sized_and_segmented(lab: AppTest) -> None:
    lab.radio(key="lab_source").set_value("cohort").run()
    lab.multiselect(key="lab_types").set_value(["pet_shop", "grocery"]).run()
    lab.multiselect(key="lab_life").set_value(["pet"]).run()
    assert not lab.error
    size = float(_kpis(lab)["Estimated cohort size (DP)"].replace(" ", ""))
    assert 100 <= size < 1500  # pet owners of grocery_2 and pet_1 (grocery_1 is "me")
    lab.selectbox(key="lab_segments").set_value("merchant_type")
    lab.button(key="lab_run").click().run()
    assert not lab.exception and not lab.error
    types = set(lab.dataframe[0].value["segment"])
    assert types and types <= {"grocery", "pet_shop"}  # never grocery_1's own customers


def test_a_tiny_cohort_is_refused_in_plain_language(lab: AppTest) -> None:
    lab.radio(key="lab_source").set_value("cohort").run()
    lab.multiselect(key="lab_types").set_value(["organic_deli"]).run()
    lab.multiselect(key="lab_regions").set_value(["Umeå"]).run()
    lab.multiselect(key="lab_life").set_value(["baby"]).run()
    assert not lab.exception
    assert "too small to simulate" in lab.warning[0].value
    assert not _has_key(lab, "lab_run")  # nothing to run on


def _has_key(at: AppTest, key: str) -> bool:
    try:
        at.button(key=key)
    except KeyError:
        return False
    return True


def test_compare_offers_and_export(lab: AppTest) -> None:
    lab.radio(key="lab_source").set_value("demo").run()
    lab.text_input(key="lab_name").set_value("Ten off").run()
    lab.number_input(key="lab_discount_pct").set_value(10)
    lab.button(key="lab_run").click().run()
    lab.text_input(key="lab_name").set_value("Thirty off").run()
    lab.number_input(key="lab_discount_pct").set_value(30)
    lab.button(key="lab_run").click().run()
    assert not lab.exception and not lab.error
    compare = lab.dataframe[-1].value
    assert list(compare.columns) == ["KPI", "Thirty off", "Ten off"]
    assert "Redemption" in set(compare["KPI"])
    (_, result), _ = lab.session_state["lab_trials"]
    doc = json.loads(trials.export_bytes(result, "json", lab.session_state["lab_config"]))
    assert doc["config"]["offer"]["pct"] == 30 and doc["config"]["population"]["source"] == "demo"
    table = pl.read_parquet(io.BytesIO(trials.export_bytes(result, "parquet")))
    assert {"segment", "metric", "mean", "low", "high"} <= set(table.columns)
    assert set(table.filter(pl.col("segment") != "all")["segment"]) <= {
        "budget", "standard", "premium"}


def test_an_invalid_offer_shows_a_message_not_a_traceback(lab: AppTest) -> None:
    lab.radio(key="lab_source").set_value("demo").run()
    lab.selectbox(key="lab_kind").set_value("cross_sell").run()
    lab.button(key="lab_run").click().run()  # no categories chosen
    assert not lab.exception
    assert "Could not run the trial" in lab.error[0].value
    assert "trigger_categories" in lab.error[0].value


def test_a_merchant_without_release_starts_on_demo_personas(lab: AppTest, world: Path) -> None:
    lab.selectbox(key="lab_merchant").set_value(str(world / "cafe_1")).run()
    assert lab.radio(key="lab_source").value == "demo"
    lab.radio(key="lab_source").set_value("own").run()
    assert not lab.exception
    assert "has no twin release yet" in lab.error[0].value
