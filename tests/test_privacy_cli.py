"""``twinsim ledger init|show|verify|export|open-period`` through the Typer app."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privacy.accounting import DpEvent
from privacy.budget import PrivacyBudget
from twinsim.cli import app

runner = CliRunner()


@pytest.fixture
def owner(tmp_path: Path) -> Path:
    folder = tmp_path / "m-7"
    folder.mkdir()
    (folder / "merchant.json").write_text(json.dumps(
        {"merchant_id": "m-7", "merchant_type": "fashion"}))
    return folder


def _run(*args: str):
    return runner.invoke(app, ["ledger", *args])


def test_init_show_verify_export(owner):
    result = _run("init", "--owner", str(owner), "--cap-epsilon", "1.5", "--delta", "1e-7",
                  "--period", "2026")
    assert result.exit_code == 0, result.output
    budget = PrivacyBudget.for_owner(owner)
    budget.charge(DpEvent(kind="gaussian", rho=0.01), requester="cli test", purpose="p",
                  mechanism="gaussian", parameters={}, sensitivity="L2: 1")
    shown = _run("show", "--owner", str(owner), "--json")
    assert shown.exit_code == 0
    doc = json.loads(shown.output)
    assert doc["owner"] == "m-7" and doc["cap_epsilon"] == 1.5 and doc["delta"] == 1e-7
    assert doc["spent_epsilon"] == budget.spent > 0
    assert doc["remaining_epsilon"] == pytest.approx(1.5 - budget.spent, abs=1e-9)
    assert [e["kind"] for e in doc["entries"]] == ["open_period", "charge"]
    assert "pseudonym_key" not in shown.output
    verified = _run("verify", "--owner", str(owner), "--json")
    assert verified.exit_code == 0 and json.loads(verified.output)["ok"] is True
    assert _run("show", "--owner", str(owner)).exit_code == 0
    exported = _run("export", "--owner", str(owner), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [r["entry_id"] for r in rows] == ["1", "2"]
    out = owner / "audit.json"
    assert _run("export", "--owner", str(owner), "--out", str(out)).exit_code == 0
    assert json.loads(out.read_text())["verify"]["ok"] is True
    assert _run("open-period", "--owner", str(owner), "--period", "2027").exit_code == 0
    assert json.loads(_run("show", "--owner", str(owner), "--json").output)["period"] == "2027"


def test_verify_exits_nonzero_naming_the_entry(owner):
    assert _run("init", "--owner", str(owner)).exit_code == 0
    path = owner / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER ledger_entries_no_update")
        conn.execute("UPDATE ledger_entries SET requester = 'someone else' WHERE entry_id = 1")
    result = _run("verify", "--owner", str(owner))
    assert result.exit_code == 1
    assert "entry 1" in result.output
    doc = json.loads(_run("verify", "--owner", str(owner), "--json").output)
    assert doc["ok"] is False and doc["first_broken_entry"] == 1


def test_unknown_owner_and_bad_parameters(owner, tmp_path):
    result = _run("show", "--owner", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "merchant.json" in result.output
    assert _run("show", "--owner", str(owner)).exit_code == 2  # no ledger yet
    bad = _run("init", "--owner", str(owner), "--delta", "1.0")
    assert bad.exit_code == 2 and "delta" in bad.output
    assert _run("init", "--owner", str(owner), "--cap-epsilon", "nan").exit_code == 2
