"""Workload counts, synthesisers (mixture vs independent), conditional sampling, cohorts."""

from __future__ import annotations

import numpy as np
import opendp.prelude as dp
import polars as pl
import pytest

from twins.fidelity import marginal_tvd
from twins.schema import SCHEMA, CohortFilter
from twins.synth import (
    IndependentSynthesiser,
    MixtureModel,
    MixtureSynthesiser,
    cohort_sizes,
    get_synthesiser,
    mix_twins,
)
from twins.workload import Measurement, default_workload, marginal_counts, workload_counts
from twinsim.errors import CohortTooSmall

NAMES = ("region", "frequency", "basket_value", "tier", "organic_share", "pet", "baby",
         "rhythm", "channel")
DOMAIN = SCHEMA.project(NAMES)
FAST = {"classes": (8,), "steps": 300, "seed": 3}


def persona_table(n: int, seed: int) -> pl.DataFrame:
    """Four personas with a shared continuous trait: correlated, not a latent-class truth."""
    rng = np.random.default_rng(seed)
    z = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    trait = rng.normal(size=n)
    cols = {}
    for a in DOMAIN.attributes:
        c = a.cardinality
        centre = rng.uniform(-c / 2 + 0.3, c / 2 - 0.3, size=4)
        x = centre[z] + rng.normal(0, 0.6) * trait + rng.normal(0, 0.5, size=n)
        cols[a.name] = np.clip(np.floor(x + c / 2), 0, c - 1).astype(np.uint8)
    return pl.DataFrame(cols)


def noisy(table: pl.DataFrame, rho: float | None) -> list[Measurement]:
    """Harness noise: OpenDP's exact integer Gaussian (the privacy core will own this)."""
    wl = default_workload(DOMAIN)
    counts = workload_counts(table, DOMAIN, wl)
    if rho is None:
        return [Measurement(clique=c, values=v.astype(float), variance=0.0)
                for c, v in zip(wl.cliques, counts, strict=True)]
    dp.enable_features("contrib")

    def meas(s: float, size: int):
        return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int), size=size),
                                  dp.l2_distance(T=int), scale=s)

    out, scales = [], {}
    for c, v, r in zip(wl.cliques, counts, wl.rho_split(rho), strict=True):
        if r not in scales:  # one binary search per distinct budget share
            scales[r] = dp.binary_search_param(lambda s: meas(s, 2), d_in=1, d_out=r, T=float)
        s = scales[r]
        out.append(Measurement(clique=c, values=np.asarray(meas(s, v.size)(v.tolist()), float),
                               variance=s * s))
    return out


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return persona_table(20_000, 11)


@pytest.fixture(scope="module")
def exact_model(table):
    return MixtureSynthesiser(**FAST).fit(noisy(table, None), DOMAIN)


def test_marginal_counts_sum_to_n_and_change_by_one_per_customer(table) -> None:
    wl = default_workload(DOMAIN)
    before = workload_counts(table, DOMAIN, wl)
    after = workload_counts(pl.concat([table, table.head(1)]), DOMAIN, wl)
    for b, a in zip(before, after, strict=True):
        assert b.sum() == table.height
        assert np.abs(a - b).sum() == 1  # L1 = L2 = 1 per marginal
    c = marginal_counts(table, DOMAIN, ("pet", "tier")).reshape(2, 3)
    assert c[1, 2] == table.filter((pl.col("pet") == 1) & (pl.col("tier") == 2)).height


def test_rho_split_sums_to_total() -> None:
    wl = default_workload(DOMAIN)
    assert sum(wl.rho_split(0.01)) == pytest.approx(0.01)
    assert len(wl.cliques) == len(NAMES) + len(NAMES) * (len(NAMES) - 1) // 2


def test_mixture_beats_independent_at_epsilon_one(table) -> None:
    ms = noisy(table, 0.0132)  # ε = 1 at δ = 1e-8
    twins = 50_000
    ind = marginal_tvd(table, IndependentSynthesiser().fit(ms, DOMAIN).sample(twins, 1), DOMAIN)
    mix = marginal_tvd(table, MixtureSynthesiser(**FAST).fit(ms, DOMAIN).sample(twins, 1), DOMAIN)
    assert mix["tvd_2way_mean"] < 0.5 * ind["tvd_2way_mean"]
    assert mix["tvd_2way_mean"] < 0.03


def test_conditional_sampling_is_exact(exact_model, table) -> None:
    where = CohortFilter.parse("pet=yes, organic_share>=high", DOMAIN)
    cohort = exact_model.sample(20_000, seed=5, where=where)
    assert where.mask(cohort).all()
    # the model's share matches the data's share of the cohort
    assert exact_model.share(where) == pytest.approx(where.mask(table).mean(), abs=0.01)
    # same distribution as rejection sampling from the unconditioned model
    free = exact_model.sample(400_000, seed=6)
    kept = free.filter(pl.Series(where.mask(free)))
    assert marginal_tvd(kept, cohort, DOMAIN)["tvd_2way_max"] < 0.05
    assert exact_model.size(where) == pytest.approx(exact_model.share(where) * table.height,
                                                   rel=1e-6)


def test_determinism_by_seed(table, exact_model) -> None:
    again = MixtureSynthesiser(**FAST).fit(noisy(table, None), DOMAIN)
    np.testing.assert_array_equal(again.weights, exact_model.weights)
    assert again.sample(1000, seed=9).equals(exact_model.sample(1000, seed=9))
    assert not exact_model.sample(1000, seed=9).equals(exact_model.sample(1000, seed=10))


def test_cohort_mixing_across_owners(table, exact_model) -> None:
    other = IndependentSynthesiser().fit(noisy(table.head(5000), None), DOMAIN)
    models = {"shop_a": exact_model, "shop_b": other}
    sizes = cohort_sizes(models)
    assert sizes["shop_a"] == pytest.approx(20_000) and sizes["shop_b"] == pytest.approx(5_000)
    twins = mix_twins(models, 10_000, seed=1)
    share_a = (twins["owner"] == "shop_a").mean()
    assert share_a == pytest.approx(0.8, abs=0.02)
    where = CohortFilter.parse("pet=yes", DOMAIN)
    assert CohortFilter.mask(where, mix_twins(models, 500, seed=2, where=where)).all()
    with pytest.raises(CohortTooSmall, match="below the minimum"):
        mix_twins(models, 100, seed=1, where=where, min_size=1e9)


def test_support_gives_impossible_levels_zero_probability(table) -> None:
    bv = DOMAIN["basket_value"]
    support = {"basket_value": {0, 1, 2, 3}}
    model = IndependentSynthesiser().fit(noisy(table, 0.05), DOMAIN, support=support)
    p = model.probs[DOMAIN.index("basket_value")]
    assert p[:, 4:].sum() == 0 and np.allclose(p.sum(axis=1), 1.0)
    assert model.sample(5_000, seed=1)["basket_value"].max() <= 3
    # a class with no mass on the allowed levels falls back to uniform over them
    zero = exact_model_like()
    restricted = zero.with_support({"basket_value": {1, 2}})
    np.testing.assert_allclose(restricted.probs[DOMAIN.index("basket_value")][0],
                               [0, 0.5, 0.5] + [0] * (bv.cardinality - 3))
    assert zero.with_support(None) is zero
    with pytest.raises(ValueError, match="support"):
        zero.with_support({"basket_value": {bv.cardinality}})
    with pytest.raises(ValueError, match="unknown attribute"):
        zero.with_support({"colour": {0}})


def exact_model_like() -> MixtureModel:
    """One class, all basket_value mass on the top level, uniform elsewhere."""
    probs = tuple(np.eye(1, a.cardinality, a.cardinality - 1) if a.name == "basket_value"
                  else np.full((1, a.cardinality), 1.0 / a.cardinality)
                  for a in DOMAIN.attributes)
    return MixtureModel(domain=DOMAIN, weights=np.ones(1), probs=probs, total=1.0)


def test_registry_and_errors(table) -> None:
    assert isinstance(get_synthesiser("independent"), IndependentSynthesiser)
    with pytest.raises(ValueError, match="unknown name"):
        get_synthesiser("gan")
    partial = [m for m in noisy(table, None) if "pet" not in m.clique]
    with pytest.raises(ValueError, match="neither measured nor"):
        IndependentSynthesiser().fit(partial, DOMAIN)
    model = IndependentSynthesiser().fit(partial, DOMAIN, constants={"pet": 1})
    assert (model.sample(100, 0)["pet"] == 1).all()
