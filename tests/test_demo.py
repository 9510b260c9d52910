"""The demo federation: prepare (idempotent, charged once), run (three offers), CLI, app cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privacy.audit import verify_ledger
from privacy.budget import LEDGER_FILE
from privacy.ledger import Ledger
from twins.hub import fit_release
from twinsim.cli import app
from twinsim.demo import (
    DEMO_FILE,
    DEMO_MERCHANT,
    DEMO_OFFERS,
    RELEASES_DIR,
    SYNTHESISER_ENV,
    DemoState,
    fit_settings,
    prepare_demo,
    run_demo,
)

FAST = "independent"  # the app's fast knob (TWINSIM_SYNTHESISER=independent)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> DemoState:
    root = tmp_path_factory.mktemp("demo")
    events: list[str] = []
    state = prepare_demo(root / "world", seed=7, epsilon=0.5, synthesiser=FAST,
                         cache=root / "cache", progress=lambda s, d, t, m: events.append(s))
    assert {"world", "releases", "fitting"} <= set(events)
    return state


def _entries(state: DemoState) -> dict[str, int]:
    return {o.merchant_id: len(Ledger(state.world_dir / o.merchant_id / LEDGER_FILE).entries())
            for o in state.owners}


def test_prepare_releases_once_per_owner_and_charges_the_ledger(prepared: DemoState) -> None:
    assert prepared.generated
    assert len(prepared.owners) == 7 and DEMO_MERCHANT in {o.merchant_id for o in prepared.owners}
    for o in prepared.owners:
        assert o.charged_now
        assert o.path.parent == prepared.world_dir / o.merchant_id / RELEASES_DIR
        assert o.path.name == f"{o.release_id}.json"
        assert o.epsilon == pytest.approx(0.5)
        assert o.spent_epsilon == pytest.approx(0.5, abs=1e-6)
        assert o.remaining_epsilon == pytest.approx(o.cap_epsilon - 0.5, abs=1e-6)
        assert verify_ledger(prepared.world_dir / o.merchant_id / LEDGER_FILE).ok
    # open_period, charge, released
    assert set(_entries(prepared).values()) == {3}
    summary = json.loads((prepared.world_dir / DEMO_FILE).read_text(encoding="utf-8"))
    assert summary["fit"] == {"synthesiser": FAST}
    assert len(summary["owners"]) == 7


def test_second_prepare_charges_nothing_and_keeps_the_releases(prepared: DemoState) -> None:
    before = _entries(prepared)
    again = prepare_demo(prepared.world_dir, seed=7, epsilon=0.5, synthesiser=FAST,
                         cache=prepared.cache)
    assert not again.generated
    assert not any(o.charged_now for o in again.owners)
    assert _entries(again) == before
    assert [o.release_id for o in again.owners] == [o.release_id for o in prepared.owners]
    assert [o.spent_epsilon for o in again.owners] == [o.spent_epsilon for o in prepared.owners]


def test_fits_land_in_the_cache_the_app_reads(prepared: DemoState,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    models = prepared.cache / "models"
    cached = sorted(models.glob("*.json"))
    assert len(cached) == 7
    monkeypatch.setenv(SYNTHESISER_ENV, FAST)
    from app_pages.trials import fit_settings as app_fit_settings

    assert app_fit_settings() == fit_settings()  # same settings -> same cache key
    for o in prepared.owners:
        fit_release(prepared.release(o.merchant_id), cache=prepared.cache, **app_fit_settings())
    assert sorted(models.glob("*.json")) == cached  # all hits, nothing refitted


def test_run_compares_three_offers_with_intervals(prepared: DemoState) -> None:
    result = run_demo(prepared, n_twins=1200, days=45, replications=3, seed=3)
    table = result.table()
    assert table.height == len(DEMO_OFFERS)
    assert set(table["kind"]) == {"discount", "cross_sell", "membership"}
    assert sum(result.twins.values()) == 1200
    assert any("grocery_1" in k for k in result.sizes)
    for row in table.iter_rows(named=True):
        assert row["reach"] > 0
        for k in ("redemption_rate", "incremental_revenue", "incremental_margin"):
            assert row[f"{k}_low"] <= row[k] <= row[f"{k}_high"]
        assert 0 < row["redemption_rate"] < 1
    # the deli's own twins and the grocers' twins are both simulated (segments)
    _, first = result.experiments[0]
    assert set(first.segments) <= {"organic_deli", "grocery"} and "grocery" in first.segments
    doc = json.loads(json.dumps(result.to_dict()))
    assert all(not (isinstance(v, float) and math.isnan(v)) for r in doc["offers"]
               for v in r.values())


def test_cli_prepare_only_json_reports_no_new_charges(prepared: DemoState) -> None:
    res = CliRunner().invoke(app, ["demo", "--world", str(prepared.world_dir),
                                   "--prepare-only", "--json"],
                             env={SYNTHESISER_ENV: FAST, "TWINSIM_CACHE": str(prepared.cache)})
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["result"] is None
    assert [o["charged_now"] for o in doc["prepared"]["owners"]] == [False] * 7


def test_cli_runs_the_story_and_points_at_the_app(prepared: DemoState) -> None:
    res = CliRunner().invoke(app, ["demo", "--world", str(prepared.world_dir), "--twins",
                                   "600", "--days", "30", "--replications", "2"],
                             env={SYNTHESISER_ENV: FAST, "TWINSIM_CACHE": str(prepared.cache),
                                  "COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "organic meat" in out and "ROI" in out and "kept" in out
    assert "http://localhost:8501" in out and "make run" in out


def test_cli_refuses_an_over_budget_demo(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--world", str(tmp_path / "w"), "--prepare-only",
                                   "--epsilon", "5"],
                             env={SYNTHESISER_ENV: FAST, "TWINSIM_CACHE": str(tmp_path / "c")})
    assert res.exit_code == 2
    assert "cap" in res.stderr and "Nothing was charged" in res.stderr


def test_a_corrupt_kept_release_is_named(tmp_path: Path) -> None:
    from twinsim.demo import kept_release

    assert kept_release(tmp_path) is None
    bad = tmp_path / RELEASES_DIR / "rel-x.json"
    bad.parent.mkdir()
    bad.write_text('{"schema_version": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"rel-x\.json"):
        kept_release(tmp_path)
