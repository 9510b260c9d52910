"""Fidelity: TVD over 1-way and 2-way marginals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from twins.fidelity import marginal_tvd, tvd


def test_identical_tables_have_zero_tvd() -> None:
    rng = np.random.default_rng(0)
    t = pl.DataFrame({f"a{i}": rng.integers(0, 4, 500) for i in range(5)})
    scores = marginal_tvd(t, t.sample(fraction=1.0, shuffle=True, seed=3))
    assert scores == {"tvd_1way_mean": 0.0, "tvd_1way_max": 0.0,
                      "tvd_2way_mean": 0.0, "tvd_2way_max": 0.0}


def test_hand_computed_example() -> None:
    # real: (0,0),(0,1),(1,1),(1,1); synth: (0,0),(0,0),(1,1),(1,0)
    real = pl.DataFrame({"a": [0, 0, 1, 1], "b": [0, 1, 1, 1]})
    synth = pl.DataFrame({"a": [0, 0, 1, 1], "b": [0, 0, 1, 0]})
    s = marginal_tvd(real, synth)
    # a: identical -> 0; b: real (1/4, 3/4) vs synth (3/4, 1/4) -> 0.5
    assert s["tvd_1way_mean"] == pytest.approx(0.25)
    assert s["tvd_1way_max"] == pytest.approx(0.5)
    # joint: real {00:1/4, 01:1/4, 11:1/2}, synth {00:1/2, 11:1/4, 10:1/4} -> (1/4+1/4+1/4+1/4)/2
    assert s["tvd_2way_mean"] == pytest.approx(0.5)
    assert s["tvd_2way_max"] == pytest.approx(0.5)


def test_tvd_of_vectors_and_shape_check() -> None:
    assert tvd(np.array([1, 1]), np.array([2, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        tvd(np.ones(2), np.ones(3))


def test_many_pairs_are_scored_in_order() -> None:
    rng = np.random.default_rng(1)
    real = pl.DataFrame({f"a{i}": rng.integers(0, 3, 2000) for i in range(20)})
    synth = real.with_columns(pl.col("a19").shuffle(seed=2))
    s = marginal_tvd(real, synth)
    assert s["tvd_1way_max"] == 0.0
    assert s["tvd_2way_max"] > 0.0  # a19 lost its links (here, to noise only)
