"""MerchantInfo / WorldInfo value objects and their folders."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest

import retail
from retail.merchant import (
    MerchantInfo,
    WorldInfo,
    read_merchant_info,
    read_world,
    write_merchant_info,
    write_world_info,
)
from twinsim.errors import DataValidationError

GOOD = Path(__file__).parent / "data" / "good_merchant"
BASE = {"merchant_id": "grocery_1", "name": "Stor Livs", "merchant_type": "grocery",
        "regions": ("Stockholm", "Göteborg"), "currency": "SEK",
        "period_start": date(2025, 1, 1), "period_end": date(2025, 12, 31)}


def test_round_trip_through_merchant_json(tmp_path: Path) -> None:
    info = MerchantInfo(**BASE)
    write_merchant_info(tmp_path, info)
    data = json.loads((tmp_path / "merchant.json").read_text("utf-8"))
    assert data == {"schema_version": 1, "merchant_id": "grocery_1", "name": "Stor Livs",
                    "merchant_type": "grocery", "regions": ["Stockholm", "Göteborg"],
                    "currency": "SEK", "period_start": "2025-01-01",
                    "period_end": "2025-12-31"}
    assert read_merchant_info(tmp_path) == info


@pytest.mark.parametrize(("change", "field"), [
    ({"merchant_type": "bookshop"}, "merchant_type"),
    ({"regions": ("Oslo",)}, "regions"),
    ({"regions": ()}, "regions"),
    ({"regions": ("Malmö", "Malmö")}, "regions"),
    ({"period_end": date(2024, 1, 1)}, "period_end"),
    ({"currency": "kr"}, "currency"),
    ({"merchant_id": "bad id/x"}, "merchant_id"),
    ({"name": " "}, "name"),
    ({"schema_version": 2}, "schema_version"),
])
def test_invalid_info_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        MerchantInfo(**{**BASE, **change})


def test_info_is_frozen() -> None:
    info = MerchantInfo(**BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "x"  # type: ignore[misc]


def test_merchant_json_unknown_key_is_bad(tmp_path: Path) -> None:
    data = json.loads((GOOD / "merchant.json").read_text("utf-8"))
    data["colour"] = "blue"
    (tmp_path / "merchant.json").write_text(json.dumps(data), "utf-8")
    with pytest.raises(DataValidationError, match=r"bad_merchant_json.*colour"):
        read_merchant_info(tmp_path)


def test_world_round_trip_and_missing_merchant_folder(tmp_path: Path) -> None:
    info = WorldInfo(kind="synthetic", merchants=("grocery_1",), scale="small", seed=7,
                     truth_dir="_truth")
    write_world_info(tmp_path, info)
    with pytest.raises(DataValidationError, match="grocery_1"):
        read_world(tmp_path)
    write_merchant_info(tmp_path / "grocery_1", MerchantInfo(**BASE))
    world = read_world(tmp_path)
    assert world.info == info
    assert world.merchant_dirs == {"grocery_1": tmp_path / "grocery_1"}
    with pytest.raises(ValueError, match="kind"):
        WorldInfo(kind="imaginary", merchants=("a",))


def test_package_exports_exist() -> None:
    for name in retail.__all__:
        assert hasattr(retail, name), name
