"""Privacy & Compliance and Data owners pages, driven with AppTest on a world with a release."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from browser.worlds import add_release, bare_world
from streamlit.testing.v1 import AppTest

from app_pages.cli import WORLD_ENV
from privacy.accounting import zcdp_rho_for_epsilon
from privacy.release import Release
from retail.merchant import WorldInfo, write_world_info

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Release]:
    w = bare_world(tmp_path / "world")
    return w, add_release(w / "grocery_1", epsilon=0.5)


def _page(monkeypatch: pytest.MonkeyPatch, world: Path, page: str) -> AppTest:
    monkeypatch.setenv(WORLD_ENV, str(world))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(f"app_pages/{page}.py")
    return at.run()


def test_budget_ledger_and_verify(monkeypatch: pytest.MonkeyPatch,
                                  world: tuple[Path, Release]) -> None:
    at = _page(monkeypatch, world[0], "privacy")
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Spent ε"]) == pytest.approx(0.5, rel=0.01)
    assert float(metrics["Remaining ε"]) == pytest.approx(1.5, rel=0.01)
    ledger = at.dataframe[0].value
    assert list(ledger["kind"]) == ["open_period", "charge", "released"]
    assert ledger["release_hash"].iloc[2] == world[1].content_hash
    at.button(key="verify").click().run()
    assert "Chain verified: 3 entries" in at.success[0].value


def test_a_tampered_ledger_is_reported_broken(monkeypatch: pytest.MonkeyPatch,
                                              world: tuple[Path, Release]) -> None:
    db = world[0] / "grocery_1" / "ledger.sqlite"
    with sqlite3.connect(db) as conn:  # an insider edits the purpose of the charge
        conn.execute("DROP TRIGGER IF EXISTS ledger_entries_no_update")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("UPDATE ledger_entries SET purpose='marketing' WHERE entry_id=2")
    at = _page(monkeypatch, world[0], "privacy")
    at.button(key="verify").click().run()
    assert not at.exception
    assert "Chain broken at entry 2" in at.error[0].value


def test_release_detail_and_noise_preview(monkeypatch: pytest.MonkeyPatch,
                                         world: tuple[Path, Release]) -> None:
    at = _page(monkeypatch, world[0], "privacy")
    detail = at.dataframe[1].value
    m = world[1].measurements[0]
    assert list(detail["aggregate"]) == ["tier"]
    assert detail["scale"].iloc[0] == pytest.approx(m.scale)
    assert detail["expected_abs_error"].iloc[0] == pytest.approx(m.scale * 0.7979, rel=1e-3)
    n_entries = len(at.dataframe[0].value)
    at.number_input(key="preview_eps").set_value(2.0)
    at.button(key="preview").click().run()
    assert not at.exception
    assert "would exceed the cap" in at.warning[0].value
    plan = at.dataframe[2].value
    assert len(plan) > 10 and (plan["scale"] > 0).all()
    # the planned marginals share exactly the ε asked for (as ρ at the owner's δ)
    assert plan["loss"].sum() == pytest.approx(zcdp_rho_for_epsilon(2.0, 1e-8), rel=1e-6)
    assert len(at.dataframe[0].value) == n_entries  # a preview spends nothing


def test_audit_exports(monkeypatch: pytest.MonkeyPatch, world: tuple[Path, Release]) -> None:
    at = _page(monkeypatch, world[0], "privacy")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download JSON", "Download HTML"]
    from app_pages import services

    folder = str(world[0] / "grocery_1")
    doc = json.loads(services.audit_export(folder, "json"))
    assert doc["verify"]["ok"] and len(doc["entries"]) == 3
    html = services.audit_export(folder, "html")
    assert "Chain verified" in html and world[1].content_hash in html
    assert services.audit_export(folder, "csv").count("\n") == 4


def test_an_owner_without_ledger(monkeypatch: pytest.MonkeyPatch,
                                 world: tuple[Path, Release]) -> None:
    at = _page(monkeypatch, world[0], "privacy")
    at.selectbox(key="privacy_owner").set_value("pet_1").run()
    assert "has released nothing yet" in at.info[0].value


def test_data_owners_shows_what_left(monkeypatch: pytest.MonkeyPatch,
                                     world: tuple[Path, Release]) -> None:
    at = _page(monkeypatch, world[0], "owners")
    assert not at.exception and not at.error
    overview = at.dataframe[0].value
    assert list(overview["owner"]) == ["grocery_1", "pet_1"]
    assert overview["releases"].iloc[0] == 1
    assert at.selectbox(key="owners_release").value == world[1].release_id
    assert any(world[1].content_hash in m.value for m in at.markdown)
    content = json.loads(at.json[0].value)
    assert content["content_hash"] == world[1].content_hash
    assert "customer_id" not in at.json[0].value
    assert list(at.dataframe[1].value["aggregate"]) == ["tier"]


def test_a_release_made_in_the_app_is_charged_and_shown(monkeypatch: pytest.MonkeyPatch,
                                                        small_world: Path,
                                                        tmp_path: Path) -> None:
    world = tmp_path / "one"
    shutil.copytree(small_world / "pet_1", world / "pet_1")
    write_world_info(world, WorldInfo(kind="synthetic", merchants=("pet_1",)))
    at = _page(monkeypatch, world, "privacy")
    assert "has released nothing yet" in at.info[0].value
    at.switch_page("app_pages/owners.py").run()
    at.number_input(key="owners_eps").set_value(0.5)
    at.button(key="owners_release_now").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["releases"].iloc[0] == 1
    content = json.loads(at.json[0].value)
    assert len(content["measurements"]) > 20 and "customer_id" not in at.json[0].value
    at.switch_page("app_pages/privacy.py").run()  # the cached views see the new entries
    assert float({m.label: m.value for m in at.metric}["Spent ε"]) == pytest.approx(0.5, 0.01)
    at.switch_page("app_pages/owners.py").run()
    at.number_input(key="owners_eps").set_value(2.0)
    at.button(key="owners_release_now").click().run()  # over the cap: refused, nothing spent
    assert not at.exception
    assert "Could not make the release" in at.error[0].value
    at.switch_page("app_pages/privacy.py").run()
    assert list(at.dataframe[0].value["kind"]) == ["open_period", "charge", "released"]
