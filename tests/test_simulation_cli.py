"""``twinsim simulate`` / ``forecast`` / ``sweep``: options wired, clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from simulation.synthetic import synthetic_twins
from twinsim.cli import app

RUN = CliRunner()
FAST = ["--days", "12", "--replications", "2"]


def _offer(tmp_path: Path, **spec: object) -> Path:
    path = tmp_path / "offer.json"
    path.write_text(json.dumps({"name": "Meat", "kind": "discount", "pct": 20,
                                "categories": ["meat"], "days": 10, **spec}))
    return path


@pytest.fixture(scope="module")
def twins_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A grocery twins file whose merchant type is only in the Parquet metadata."""
    path = tmp_path_factory.mktemp("twins") / "twins.parquet"
    table = synthetic_twins(400, "grocery", seed=3).drop("persona").to_arrow()
    pq.write_table(table.replace_schema_metadata({b"merchant_type": b"grocery"}), path)
    return path


def test_simulate_reads_the_merchant_type_from_the_twins_file(tmp_path: Path,
                                                              twins_file: Path) -> None:
    res = RUN.invoke(app, ["simulate", "--twins", str(twins_file), "--offer",
                           str(_offer(tmp_path)), *FAST, "--segments", "tier", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["merchant_type"] == "grocery" and out["n_twins"] == 400
    assert out["overall"]["reach"]["mean"] > 0
    assert set(out["segments"]) <= {"budget", "standard", "premium"} and out["segments"]


def test_simulate_reads_a_merchant_type_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    synthetic_twins(200, "apparel", seed=1).with_columns(
        merchant_type=pl_lit("apparel")).write_parquet(path)
    offer = _offer(tmp_path, categories=["ties"])
    res = RUN.invoke(app, ["simulate", "--twins", str(path), "--offer", str(offer), *FAST,
                           "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["merchant_type"] == "apparel"


def pl_lit(value: str):  # type: ignore[no-untyped-def]
    import polars as pl

    return pl.lit(value)


def test_forecast_json_has_intervals() -> None:
    res = RUN.invoke(app, ["forecast", "--demo", "300", *FAST, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("transactions", "revenue", "active_customers"):
        e = out[key]
        assert e["low"] < e["mean"] < e["high"], (key, e)
    assert out["transactions"]["mean"] > 0 and out["days"] == 12


@pytest.mark.parametrize(("spec", "args", "needle"), [
    ({"categories": ["ties"]}, [], "unknown category"),
    ({"pct": 120}, [], "cannot exceed 100%"),
    ({"days": -5}, [], "positive number of days"),
    ({"target": ["vehicle_age=3y"]}, [], "select 0 of"),
    ({}, ["--days", "-3"], "positive number of days"),
    ({"target": ["shoe_size=42"]}, [], "unknown attribute"),
])
def test_bad_offers_give_one_line_errors(tmp_path: Path, spec: dict[str, object],
                                         args: list[str], needle: str) -> None:
    res = RUN.invoke(app, ["simulate", "--demo", "200", "--offer", str(_offer(tmp_path, **spec)),
                           "--replications", "2", *args])
    assert res.exit_code == 2, res.output
    assert ("Traceback" not in res.output and res.exception is None) or isinstance(
        res.exception, SystemExit)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_missing_twins_file_and_unknown_type(tmp_path: Path) -> None:
    res = RUN.invoke(app, ["forecast", "--twins", str(tmp_path / "nope.parquet")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    path = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"frequency": pa.array([1, 2], pa.uint8())}), path)
    res = RUN.invoke(app, ["forecast", "--twins", str(path)])
    assert res.exit_code == 2 and "--merchant-type" in res.stderr


def test_sweep_cli_writes_csv_and_json(tmp_path: Path) -> None:
    out = tmp_path / "grid.csv"
    res = RUN.invoke(app, ["sweep", "--demo", "300", "--offer", str(_offer(tmp_path)),
                           "--discounts", "5,20", "--cohorts", "pet=yes;all",
                           "--durations", "7", *FAST, "--processes", "1", "--out", str(out),
                           "--json"])
    assert res.exit_code == 0, res.output
    cells = json.loads(res.stdout)["cells"]
    assert [(c["discount"], c["cohort"]) for c in cells] == [
        (5.0, "pet=yes"), (5.0, "all"), (20.0, "pet=yes"), (20.0, "all")]
    assert out.read_text().splitlines()[0].startswith("discount,cohort,duration,targeted")
    table = RUN.invoke(app, ["sweep", "--demo", "300", "--offer", str(_offer(tmp_path)),
                             "--discounts", "10", "--durations", "7", *FAST,
                             "--processes", "1"])
    assert table.exit_code == 0 and "ROI" in table.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--discounts", "5,150"], "(0, 100]"),
    (["--discounts", "five"], "not a number"),
    (["--cohorts", "vehicle_age=3y"], "selects no twins"),
    (["--durations", "30", "--days", "12"], "outlast"),
])
def test_sweep_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    res = RUN.invoke(app, ["sweep", "--demo", "200", "--offer", str(_offer(tmp_path)),
                           "--replications", "2", "--processes", "1", *args])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and needle in res.stderr, res.stderr
