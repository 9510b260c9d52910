"""``twinsim world check|import-csv|cdnow`` through the real root app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from retail.merchant import WorldInfo, write_world_info
from twinsim.cli import app

DATA = Path(__file__).parent / "data"
GOOD = DATA / "good_merchant"
runner = CliRunner()


@pytest.mark.parametrize("command", ["check", "import-csv", "cdnow"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, ["world", command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


def test_check_good_folder_prints_counts() -> None:
    result = runner.invoke(app, ["world", "check", str(GOOD), "--now", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "grocery_test" in result.output
    assert "transactions" in result.output and "40" in result.output


def test_check_bad_folder_fails_with_the_message() -> None:
    folder = DATA / "bad" / "transactions_zero_quantity"
    result = runner.invoke(app, ["world", "check", str(folder), "--now", "2026-01-01"])
    assert result.exit_code == 1
    assert "transactions.parquet row 5, column 'quantity', value '0': " \
           "non_positive_quantity" in result.output


def test_check_lenient_json_writes_quarantine(tmp_path: Path) -> None:
    folder = DATA / "bad" / "customers_unknown_region"
    result = runner.invoke(app, ["world", "check", str(folder), "--lenient", "--quarantine",
                                 str(tmp_path), "--json", "--now", "2026-01-01"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["merchants"]["grocery_test"]["tables"]
    for t in report.values():
        assert t["loaded_rows"] + t["quarantined_rows"] == t["input_rows"]
    assert report["customers"]["by_rule"] == {"unknown_region": 1}
    assert (tmp_path / "customers.quarantine.parquet").is_file()


def test_check_json_failure_is_machine_readable() -> None:
    folder = DATA / "bad" / "exposures_unknown_arm"
    result = runner.invoke(app, ["world", "check", str(folder), "--json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["ok"] is False and payload["offences"][0]["rule"] == "unknown_arm"


def test_check_world_folder(tmp_path: Path) -> None:
    shutil.copytree(GOOD, tmp_path / "grocery_test")
    write_world_info(tmp_path, WorldInfo(kind="synthetic", merchants=("grocery_test",)))
    result = runner.invoke(app, ["world", "check", str(tmp_path), "--now", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "grocery_test" in result.output


def test_check_rejects_a_folder_that_is_neither(tmp_path: Path) -> None:
    result = runner.invoke(app, ["world", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "neither a world folder" in result.output


def test_import_csv_command(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        "id;city;since\nk1;Sthlm;01.02.2024\nk2;Sthlm;03.04.2024\n", "utf-8")
    (tmp_path / "t.csv").write_text(
        "kvitto;kund;tid;avd;antal;pris\n"
        "1;k1;05.03.2025 10:15;Mejeri;2;12,50\n"
        "2;k2;06.03.2025 18:01;Bröd;1;29,90\n", "utf-8")
    mapping = {
        "merchant": {"merchant_id": "deli_1", "name": "Deli", "regions": ["Stockholm"],
                     "currency": "SEK", "period_start": "2025-01-01",
                     "period_end": "2025-12-31"},
        "csv": {"separator": ";", "decimal_comma": True},
        "tables": {
            "customers": {"columns": {"id": "customer_id", "city": "region",
                                      "since": "signup_date"},
                          "values": {"region": {"Sthlm": "Stockholm"}},
                          "date_format": "%d.%m.%Y",
                          "defaults": {"consent_analytics": True, "consent_partner": False}},
            "transactions": {"columns": {"kvitto": "transaction_id", "kund": "customer_id",
                                         "tid": "timestamp", "avd": "category",
                                         "antal": "quantity", "pris": "unit_price"},
                             "values": {"category": {"Mejeri": "dairy", "Bröd": "bakery"}},
                             "datetime_format": "%d.%m.%Y %H:%M",
                             "defaults": {"channel": "store", "tier": "standard",
                                          "organic": False, "promo": False}},
        },
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), "utf-8")
    out = tmp_path / "out"
    args = ["world", "import-csv", "--customers", str(tmp_path / "c.csv"), "--transactions",
            str(tmp_path / "t.csv"), "--mapping", str(tmp_path / "m.yaml"),
            "--merchant-type", "organic_deli", "--out", str(out), "--now", "2026-01-01"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["world", "check", str(out), "--json", "--now", "2026-01-01"])
    tables = json.loads(check.output)["merchants"]["deli_1"]["tables"]
    assert tables["transactions"]["loaded_rows"] == 2
    # Unknown category for this merchant type: strict refusal naming the CSV row.
    (tmp_path / "t.csv").write_text(
        "kvitto;kund;tid;avd;antal;pris\n1;k1;05.03.2025 10:15;Godis;2;12,50\n", "utf-8")
    result = runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "out2")])
    assert result.exit_code == 1
    assert "row 0, column 'category', value 'Godis': unknown_category" in result.output
    lenient = runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "o3"), "--lenient"])
    assert lenient.exit_code != 0 and "--quarantine" in lenient.output


def test_cdnow_command_writes_a_checkable_world(tmp_path: Path) -> None:
    result = runner.invoke(app, ["world", "cdnow", "--out", str(tmp_path / "cd")])
    assert result.exit_code == 0, result.output
    assert "23570 customers, 69659 transactions" in result.output
    check = runner.invoke(app, ["world", "check", str(tmp_path / "cd"), "--json"])
    tables = json.loads(check.output)["merchants"]["cdnow"]["tables"]
    assert tables["transactions"]["loaded_rows"] == 69_659
    assert tables["customers"]["loaded_rows"] == 23_570
