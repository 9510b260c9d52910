"""Hub side: measurements from releases, cached fits, cohorts mixed by DP size, refusals,
determinism, campaign response tables."""

from __future__ import annotations

import ast
import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from privacy import PrivacyBudget, Release
from twins.hub import (
    Cohort,
    estimate_cohort_size,
    fit_release,
    measurements_from_release,
    noise_variance,
    response_table,
    twins_from_releases,
)
from twins.release import release_owner
from twins.schema import SCHEMA
from twinsim.errors import CohortTooSmall

ROOT = Path(__file__).resolve().parent.parent
FAST = {"classes": (6,), "steps": 150}


@pytest.fixture(scope="module")
def env(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("hub")
    rels = {}
    for mid in ("grocery_1", "grocery_2"):
        owner = base / mid
        shutil.copytree(small_world / mid, owner)
        PrivacyBudget.init_owner(owner, period="2025")
        rels[mid] = release_owner(owner, epsilon=2.0, requester="t", purpose="hub tests")
    return {"rels": rels, "cache": base / "cache", "world": small_world}


def _fit(env: dict[str, object]) -> dict[str, object]:
    return {"options": FAST, "cache": env["cache"]}


def test_the_hub_never_imports_owner_side_code() -> None:
    tree = ast.parse((ROOT / "twins" / "hub.py").read_text(encoding="utf-8"))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    owner_side = {"retail.load", "retail.world", "twins.features", "twins.release",
                  "twins.outcomes", "twins.evaluation"}
    assert not mods & owner_side, mods & owner_side


def test_measurements_map_counts_and_variance(env: dict[str, object]) -> None:
    rel: Release = env["rels"]["grocery_1"]  # type: ignore[index]
    ms = measurements_from_release(rel)
    released = {m.attributes: m for m in rel.measurements if m.name.startswith("marginal:")}
    assert len(ms) == len(released) > 100
    for m in ms:
        src = released[m.clique]
        assert np.array_equal(m.values, src.array().astype(float))
        assert m.variance == pytest.approx(src.scale**2)
        assert m.values.size == math.prod(SCHEMA[a].cardinality for a in m.clique)
    assert all(not m.clique[0].startswith("arm") for m in ms)


def test_fit_is_cached_by_content_hash(env: dict[str, object]) -> None:
    rel: Release = env["rels"]["grocery_1"]  # type: ignore[index]
    cached = fit_release(rel, **_fit(env))
    fresh = fit_release(rel, options=FAST, use_cache=False)
    again = fit_release(rel, **_fit(env))
    files = list((Path(str(env["cache"])) / "models").glob("*.json"))
    assert files
    np.testing.assert_array_equal(cached.weights, again.weights)
    # a cached model samples exactly what the freshly fitted one does
    assert cached.sample(500, seed=4).equals(fresh.sample(500, seed=4))


def test_multi_owner_cohort_mixes_owners_by_dp_size(env: dict[str, object]) -> None:
    """Organic grocery shoppers in Göteborg, from grocery_1 and grocery_2."""
    rels = list(env["rels"].values())  # type: ignore[attr-defined]
    cohort = Cohort(merchant_types=("grocery",), regions=("Göteborg",),
                    where="organic_share>=medium")
    size = estimate_cohort_size(rels, cohort, **_fit(env))
    assert set(size.by_owner) == {r.owner for r in rels}
    assert all(s > 0 for s in size.by_owner.values())
    n = 6000
    tw = twins_from_releases(rels, n=n, seed=11, cohort=cohort, min_size=20, **_fit(env))
    assert tw.height == n
    assert set(tw["region"].unique()) == {SCHEMA["region"].code("Göteborg")}
    assert tw["organic_share"].min() >= SCHEMA["organic_share"].code("medium")
    assert set(tw["merchant_type"]) == {"grocery"}
    for owner, s in size.by_owner.items():
        p = s / size.total
        got = int((tw["owner"] == owner).sum())
        assert abs(got - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def test_tiny_cohort_is_refused_with_size_and_minimum(env: dict[str, object]) -> None:
    rels = list(env["rels"].values())  # type: ignore[attr-defined]
    cohort = Cohort(regions=("Umeå",), where="organic_share=very_high, baby=yes")
    est = estimate_cohort_size(rels, cohort, **_fit(env)).total
    assert est < 100
    with pytest.raises(CohortTooSmall, match=r"estimated size \d+ is below the minimum 100"):
        twins_from_releases(rels, n=100, seed=1, cohort=cohort, **_fit(env))


def test_no_matching_owner_is_refused(env: dict[str, object]) -> None:
    rels = list(env["rels"].values())  # type: ignore[attr-defined]
    with pytest.raises(CohortTooSmall, match="no release matches"):
        twins_from_releases(rels, n=10, seed=1, cohort=Cohort(merchant_types=("pet_shop",)),
                            **_fit(env))
    with pytest.raises(ValueError, match="unknown"):
        Cohort(where="organic_share>=organic")


def test_twins_parquet_is_deterministic(env: dict[str, object], tmp_path: Path) -> None:
    rels = list(env["rels"].values())  # type: ignore[attr-defined]
    paths = []
    for i, seed in enumerate((5, 5, 6)):
        path = tmp_path / f"t{i}.parquet"
        twins_from_releases(rels, n=3000, seed=seed, **_fit(env)).write_parquet(path)
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_response_table_matches_exposures_within_noise(env: dict[str, object]) -> None:
    rels = env["rels"]  # type: ignore[assignment]
    rel: Release = rels["grocery_1"]  # type: ignore[index]
    table = response_table([rel])
    assert {"n_treated", "n_control", "redeemed_treated", "spend_treated_cents",
            "cost_treated_cents", "var_n", "var_cost_cents", "offer_kind", "attribute",
            "level"} <= set(table.columns)
    assert set(table["attribute"]) == {"all", "frequency", "promo_share", "tier"}
    world = Path(str(env["world"])) / "grocery_1"
    consenting = pl.read_parquet(world / "customers.parquet").filter("consent_analytics")
    exp = (pl.read_parquet(world / "exposures.parquet")
           .unique(subset=["campaign_id", "customer_id"], keep="first")
           .join(consenting.select("customer_id"), on="customer_id"))
    first = sorted(exp["campaign_id"].unique())[0]
    truth = exp.filter(pl.col("campaign_id") == first)
    c1 = table.filter(pl.col("campaign") == 1)
    total = c1.filter(pl.col("attribute") == "all").row(0, named=True)
    for col, arm in (("n_treated", "treatment"), ("n_control", "control")):
        want = int((truth["arm"] == arm).sum())
        assert abs(total[col] - want) <= 6 * math.sqrt(total["var_n"])
        # every attribute's levels add up to the same arm within their noise
        for attr in ("frequency", "tier"):
            lv = c1.filter(pl.col("attribute") == attr)
            assert abs(float(lv[col].sum()) - want) <= 6 * math.sqrt(float(lv["var_n"].sum()))
    cost = float(truth.filter(pl.col("arm") == "treatment")["discount_cost"]
                 .clip(0, 400).sum()) * 100
    assert abs(total["cost_treated_cents"] - cost) <= 6 * math.sqrt(total["var_cost_cents"])
    m = next(m for m in rel.measurements if m.name.endswith(":spend_cents"))
    assert noise_variance(m) == pytest.approx(m.scale**2)


def test_response_table_reads_the_earlier_layout() -> None:
    """Releases made before totals were released carried counts and spend over (arm,
    redeemed, frequency): the hub sums them into totals and per-level rows."""
    from privacy.release import RELEASE_SCHEMA_VERSION, Measurement
    from twins.release import release_domain

    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=(2, 2, 7))
    spend = counts * 30_000
    meas = tuple(Measurement(name=f"campaign:1:discount:{what}",
                             attributes=("arm", "redeemed", "frequency"),
                             counts=tuple(int(x) for x in arr.reshape(-1)),
                             mechanism="gaussian", scale=2.0, rho=0.0, epsilon=0.0,
                             sensitivity=1.0)
                 for what, arr in (("counts", counts), ("spend_cents", spend)))
    rel = Release.build(schema_version=RELEASE_SCHEMA_VERSION, release_id="old",
                        owner="own-old", merchant_type="grocery", regions=("Stockholm",),
                        period="2025", domain=release_domain(), measurements=meas,
                        privacy_loss={"rho": 0.0, "epsilon": 0.0, "delta": 0.0},
                        ledger_entry_id=0, ledger_entry_hash="none",
                        software_version="test", created_at="test")
    table = response_table([rel])
    total = table.filter(pl.col("attribute") == "all").row(0, named=True)
    assert total["n_treated"] == counts[0].sum() and total["redeemed_control"] == counts[1, 1].sum()
    assert total["spend_control_cents"] == spend[1].sum() and total["cost_treated_cents"] is None
    assert total["var_n"] == pytest.approx(14 * 4.0)  # 2 x 7 cells of variance 2²
    levels = table.filter(pl.col("attribute") == "frequency").sort("level")
    assert levels["n_treated"].to_list() == counts[0].sum(axis=0).tolist()
    assert levels["redeemed_treated"].to_list() == counts[0, 1].tolist()


def _campaign_release(rng: np.random.Generator, *, counts: np.ndarray, spend: np.ndarray,
                      levels: np.ndarray, sd: dict[str, float]) -> Release:
    """A release of one discount campaign with the current layout; each table's cells get
    Gaussian noise of sd ``sd[table]`` (numpy noise: a test fixture, not a release path)."""
    from privacy.release import RELEASE_SCHEMA_VERSION, Measurement
    from twins.release import release_domain

    def meas(what: str, attrs: tuple[str, ...], arr: np.ndarray) -> Measurement:
        noisy = np.rint(arr.reshape(-1) + rng.normal(0, sd[what], arr.size)).astype(int)
        return Measurement(name=f"campaign:1:discount:{what}", attributes=attrs,
                           counts=tuple(int(x) for x in noisy), mechanism="gaussian",
                           scale=sd[what], rho=0.0, epsilon=0.0, sensitivity=1)

    tables = (meas("counts", ("arm", "redeemed"), counts),
              meas("spend_cents", ("arm",), spend),
              meas("spend_diff_cents", (), np.array([spend[0] - spend[1]])),
              meas("cost_cents", ("arm",), np.array([5_000_000, 0])),
              meas("counts_by_frequency", ("arm", "redeemed", "frequency"), levels))
    return Release.build(schema_version=RELEASE_SCHEMA_VERSION, release_id="r",
                         owner="own", merchant_type="grocery", regions=("Stockholm",),
                         period="2025", domain=release_domain(), measurements=tables,
                         privacy_loss={"rho": 0.0, "epsilon": 0.0, "delta": 0.0},
                         ledger_entry_id=0, ledger_entry_hash="none",
                         software_version="test", created_at="test")


def test_response_table_combines_the_spend_gap_and_the_redemption_counts() -> None:
    """The spend gap from both the arm totals and the difference cell, the redemptions from
    the totals and the per-level table: unbiased, with the variance the table reports, and
    less noisy than the arm totals (or the totals' redemption cell) alone."""
    from simulation.calibration import campaign_facts

    rng = np.random.default_rng(11)
    levels = rng.multinomial(20_000, np.full(7, 1 / 7), size=(2, 2))
    levels[1, 1] = 0  # the control arm never redeems
    counts = levels.sum(axis=2)
    n_t, n_c = counts[0].sum(), counts[1].sum()
    spend = np.array([n_t * 32_000, n_c * 30_000])  # a 20 SEK gap per customer
    sd = {"counts": 4.0, "counts_by_frequency": 2.0, "spend_cents": 3e6,
          "spend_diff_cents": 1e6, "cost_cents": 1e5}
    gaps, reds, facts = [], [], []
    for _ in range(400):
        fact = campaign_facts(response_table([_campaign_release(
            rng, counts=counts, spend=spend, levels=levels, sd=sd)]))[0]
        gaps.append(fact.incremental_spend)
        reds.append(fact.redeemed_treated)
        facts.append(fact)
    gaps_a, reds_a = np.array(gaps), np.array(reds)
    assert abs(gaps_a.mean() - 20.0) < 4 * gaps_a.std() / math.sqrt(gaps_a.size)
    reported = facts[0].var_incremental_spend
    assert gaps_a.var() == pytest.approx(reported, rel=0.25)
    arms_only = 2 * sd["spend_cents"] ** 2 / 1e4 / n_t ** 2
    assert reported < 0.5 * arms_only
    assert abs(reds_a.mean() - counts[0, 1]) < 4 * reds_a.std() / math.sqrt(reds_a.size)
    assert reds_a.var() == pytest.approx(facts[0].var_redeemed, rel=0.25)
    assert facts[0].var_redeemed < 0.8 * sd["counts"] ** 2


def test_tag_profile_reaches_the_twins_and_their_baskets(env: dict[str, object]) -> None:
    from simulation.params import params_from_twins
    from twins.hub import tag_profile
    from twins.schema import TAG_SHARE_PREFIX

    rels = env["rels"]  # type: ignore[assignment]
    rel: Release = rels["grocery_1"]  # type: ignore[index]
    prof = tag_profile(rel)
    assert {"pet", "baby"} <= set(prof)
    assert all(0.0 <= v <= 1.0 for pair in prof.values() for v in pair)
    for tag in ("pet", "baby"):  # "yes" means the tag holds >= 3 % of spend
        assert prof[tag][1] > max(prof[tag][0], 0.03)
    twins = twins_from_releases([rel], n=3000, seed=4, **_fit(env))
    share = twins[TAG_SHARE_PREFIX + "baby"].to_numpy()
    yes = twins["baby"].to_numpy() == SCHEMA["baby"].code("yes")
    assert (share[yes] >= 0.03).all() and (share[~yes] <= 0.03).all()
    params = params_from_twins(twins, "grocery", seed=4)
    baby = params.categories.index("baby")
    # a twin whose tagged shares add up to more than 90 % of spend is scaled down
    tagged = sum(twins[c].fill_null(0.0).to_numpy() for c in twins.columns
                 if c.startswith(TAG_SHARE_PREFIX))
    assert twins["share_car"].null_count() == twins.height  # no car categories at a grocer
    fits = tagged <= 0.9
    assert fits.mean() > 0.9
    assert np.allclose(params.category_w[fits, baby], share[fits], atol=1e-4)


def test_category_profile_reaches_the_twins_baskets(env: dict[str, object]) -> None:
    from retail.catalogue import base_spend_shares
    from simulation.params import params_from_twins
    from twins.hub import category_profile
    from twins.schema import CATEGORY_SHARE_PREFIX

    rels = env["rels"]  # type: ignore[assignment]
    rel: Release = rels["grocery_1"]  # type: ignore[index]
    prof = category_profile(rel)
    assert prof is not None and prof.shape == base_spend_shares("grocery").shape
    assert prof.sum() == pytest.approx(1.0) and (prof > 0).all()
    # the released shares, not the public default: the owner's own split of its spend
    m = next(m for m in rel.measurements if m.name == "profile:category:cents")
    raw = np.maximum(m.array().astype(float), 0) / max(m.array().sum(), 1)
    assert np.abs(prof - raw).sum() < np.abs(base_spend_shares("grocery") - raw).sum()
    twins = twins_from_releases([rel], n=2000, seed=4, **_fit(env))
    col = twins[CATEGORY_SHARE_PREFIX + "meat"].to_numpy()
    assert np.allclose(col, prof[list(rel.domain["category"]).index("meat")])
    params = params_from_twins(twins, "grocery", seed=4)
    # untagged categories keep the released proportions between themselves (up to the
    # per-twin noise): produce vs dairy
    i, j = params.categories.index("produce"), params.categories.index("dairy")
    ratio = float(np.median(params.category_w[:, i] / params.category_w[:, j]))
    assert ratio == pytest.approx(prof[i] / prof[j], rel=0.1)
    # an older release without the profile: no category columns' values, the public default
    old = Release.build(**{f: getattr(rel, f) for f in (
        "schema_version", "release_id", "owner", "merchant_type", "regions", "period", "domain",
        "privacy_loss", "ledger_entry_id", "ledger_entry_hash", "software_version",
        "created_at")}, measurements=tuple(m for m in rel.measurements
                                           if m.name != "profile:category:cents"))
    assert category_profile(old) is None
    twins_old = twins_from_releases([old], n=500, seed=4, **_fit(env))
    assert twins_old[CATEGORY_SHARE_PREFIX + "meat"].null_count() == twins_old.height
