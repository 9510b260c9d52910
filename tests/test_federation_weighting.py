"""FedAvg weighting of owners: a public, validated setting that changes the aggregate."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from federation.model import build_model, get_weights
from federation.node import ModelUpdate
from federation.rounds import run_training
from federation.settings import WEIGHTINGS, RoundSettings, averaging_weight

APP = Path(__file__).resolve().parents[1] / "federation" / "flower" / "pyproject.toml"


def test_averaging_weight_maps_the_public_size_weight() -> None:
    assert [averaging_weight(9.0, w) for w in WEIGHTINGS] == [9.0, 3.0, 1.0]
    with pytest.raises(ValueError, match=r"weighting.*'customers'"):
        averaging_weight(2.0, "customers")
    with pytest.raises(ValueError, match="size_weight"):
        averaging_weight(0.0, "examples")


def test_weighting_is_validated_and_crosses_the_wire() -> None:
    with pytest.raises(ValueError, match=r"RoundSettings\.weighting.*'examples'.*'bogus'"):
        RoundSettings(rounds=1, target_epsilon=1.0, weighting="bogus")
    for w in WEIGHTINGS:
        s = RoundSettings(rounds=2, target_epsilon=1.0, weighting=w)
        assert s.to_config()["weighting"] == w
        assert RoundSettings.from_config(s.to_config()) == s


@pytest.mark.parametrize(("weighting", "share_of_big"), [
    ("examples", 8 / 10), ("sqrt", math.sqrt(8) / (math.sqrt(8) + math.sqrt(2))),
    ("equal", 1 / 2)])
def test_weighting_changes_the_aggregate(weighting: str, share_of_big: float) -> None:
    """A big owner (size weight 8) sends +1, a small one (2) sends 0: the average is its share."""
    settings = RoundSettings(rounds=1, target_epsilon=1.0, weighting=weighting)
    start = get_weights(build_model(settings.model))

    def ask(r: int, w: dict[str, np.ndarray]) -> dict[str, ModelUpdate | BaseException]:
        return {o: ModelUpdate(owner=o, run_id="run", round_no=r, took_part=True,
                               weights={k: v + step for k, v in w.items()})
                for o, step in (("big", 1.0), ("small", 0.0))}

    result = run_training(ask, {"big": 8.0, "small": 2.0}, settings, run_id="run",
                          initial=start)
    for k, v in result.weights.items():
        np.testing.assert_allclose(v, start[k] + share_of_big, rtol=1e-5, atol=1e-6)


def test_flower_app_default_matches_round_settings() -> None:
    pytest.importorskip("flwr")
    from federation.flower_app import _settings

    config = tomllib.loads(APP.read_text(encoding="utf-8"))["tool"]["flwr"]["app"]["config"]
    assert config["weighting"] == RoundSettings.weighting
    assert _settings({**config, "weighting": "sqrt"}).weighting == "sqrt"
    with pytest.raises(ValueError, match=r"RoundSettings\.weighting"):
        _settings({**config, "weighting": "nope"})
