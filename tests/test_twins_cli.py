"""CLI round trip: release -> twins -> evaluate fidelity, the ledger's charge, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from twinsim.cli import app

FIT = ["--classes", "6", "--steps", "150"]


@pytest.fixture(scope="module")
def owner(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("cli") / "grocery_1"
    shutil.copytree(small_world / "grocery_1", dst)
    return dst


def _run(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def test_the_evaluate_group_is_registered() -> None:
    code, out, _ = _run("evaluate", "--help")
    assert code == 0 and "fidelity" in out


def test_release_twins_evaluate_round_trip(owner: Path, tmp_path: Path) -> None:
    rel = tmp_path / "r.json"
    code, _, err = _run("release", "--owner", owner, "--epsilon", "1", "--out", rel)
    assert code == 2 and "twinsim ledger init" in err and "--init-ledger" in err
    assert not rel.exists() and not (owner / "ledger.sqlite").exists()

    code, out, err = _run("release", "--owner", owner, "--epsilon", "1", "--out", rel,
                          "--init-ledger", "--requester", "ana", "--purpose", "trial", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["spent_epsilon"] == pytest.approx(1.0, abs=1e-6) and rel.is_file()

    code, out, _ = _run("ledger", "show", "--owner", owner, "--json")
    shown = json.loads(out)
    assert code == 0 and shown["spent_epsilon"] == pytest.approx(1.0, abs=1e-6)
    charges = [e for e in shown["entries"] if e["kind"] == "charge"]
    assert len(charges) == 1 and charges[0]["requester"] == "ana"
    assert charges[0]["entry_id"] == info["ledger_entry_id"]

    outs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.parquet"
        code, out, err = _run("twins", "--release", rel, "--n", "3000", "--seed", "4",
                              "--out", path, "--cache", tmp_path / "cache", *FIT)
        assert code == 0, err
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]  # same seed, same fitted model: same bytes
    assert pl.read_parquet(tmp_path / "a.parquet").height == 3000

    code, out, err = _run("evaluate", "fidelity", "--owner", owner, "--twins",
                          tmp_path / "a.parquet", "--json")
    assert code == 0, err
    report = json.loads(out)
    for key in ("tvd_1way_mean", "tvd_2way_mean", "tvd_2way_max", "baseline_tvd_2way_mean"):
        assert 0.0 <= report[key] <= 1.0
    assert report["tvd_1way_mean"] < 0.1 and report["n_twins"] == 3000


def test_twins_refuses_a_tiny_cohort(owner: Path, tmp_path: Path) -> None:
    rel = tmp_path / "r.json"
    if not (owner / "ledger.sqlite").exists():
        assert _run("ledger", "init", "--owner", owner)[0] == 0
    assert _run("release", "--owner", owner, "--epsilon", "0.5", "--out", rel)[0] == 0
    code, _, err = _run("twins", "--release", rel, "--n", "100", "--seed", "1", "--out",
                        tmp_path / "t.parquet", "--region", "Umeå", "--cohort",
                        "baby=yes, organic_share=very_high", "--cache", tmp_path / "c", *FIT)
    assert code == 2 and "is below the minimum 100" in err
    assert not (tmp_path / "t.parquet").exists()
