"""Owner-side release: no identifiers leave, the ledger is charged first, refusals change
nothing, the budget split and sensitivities are as documented."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest

import twins.release as tr
from privacy import PrivacyBudget, Release
from twins.outcomes import spend_clamp
from twins.release import (
    CAMPAIGN_SHARE,
    COST_CLAMP_SEK,
    PROFILE_CLAMP_SEK,
    PROFILE_SHARE,
    owner_queries,
    release_domain,
    release_owner,
)
from twins.schema import SCHEMA
from twinsim.errors import BudgetExceeded, UnknownOwner


def _owner(src: Path, dst: Path, *, ledger: bool = True) -> Path:
    shutil.copytree(src, dst)
    if ledger:
        PrivacyBudget.init_owner(dst, period="2025")
    return dst


@pytest.fixture(scope="module")
def released(small_world: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, Release, Path]:
    owner = _owner(small_world / "grocery_1", tmp_path_factory.mktemp("rel") / "grocery_1")
    out = owner.parent / "release.json"
    rel = release_owner(owner, epsilon=1.0, requester="analyst@hub", purpose="twins", out=out)
    return owner, rel, out


def test_a_release_never_contains_a_customer_id(released: tuple[Path, Release, Path]) -> None:
    owner, rel, out = released
    text = out.read_text(encoding="utf-8")
    ids = pl.read_parquet(owner / "customers.parquet")["customer_id"].to_list()
    ids += pl.read_parquet(owner / "exposures.parquet")["customer_id"].unique().to_list()
    assert len(ids) > 1000
    leaked = [i for i in ids if i in text]
    assert leaked == []
    # nor the merchant's own id (campaign ids embed it); only the keyed pseudonym
    assert "grocery_1" not in text and rel.owner.startswith("own-")
    assert Release.from_json(text) == rel


def test_the_release_carries_public_metadata(released: tuple[Path, Release, Path]) -> None:
    _, rel, _ = released
    assert rel.merchant_type == "grocery"
    assert "Göteborg" in rel.regions and rel.period == "2025"
    assert dict(rel.domain) == release_domain(rel.merchant_type)
    names = [m.name for m in rel.measurements]
    assert "marginal:region" in names and "marginal:region,tenure" in names
    assert any(n.startswith("campaign:1:discount:") for n in names)
    # structural constants of a grocery chain are not measured
    assert not any("menswear" in m.attributes or "vehicle_age" in m.attributes
                   for m in rel.measurements)


def test_the_ledger_shows_the_release_charge(released: tuple[Path, Release, Path]) -> None:
    owner, rel, _ = released
    budget = PrivacyBudget.for_owner(owner)
    entries = budget.ledger.entries()
    charge = [e for e in entries if e.kind == "charge"]
    done = [e for e in entries if e.kind == "released"]
    assert len(charge) == 1 and len(done) == 1
    assert charge[0].entry_id == rel.ledger_entry_id
    assert done[0].release_hash == rel.content_hash
    assert math.isclose(budget.spent, 1.0, abs_tol=1e-6)
    assert charge[0].requester == "analyst@hub" and charge[0].purpose == "twins"
    assert math.isclose(rel.privacy_loss["epsilon"], 1.0, abs_tol=1e-6)


def test_budget_split_and_sensitivities(small_world: Path) -> None:
    from retail.load import load_merchant

    plan = owner_queries(load_merchant(small_world / "grocery_1"))
    camp = [(q, w) for q, w in zip(plan.queries, plan.weights, strict=True)
            if q.name.startswith("campaign:")]
    marg = [(q, w) for q, w in zip(plan.queries, plan.weights, strict=True)
            if q.name.startswith("marginal:")]
    prof = [(q, w) for q, w in zip(plan.queries, plan.weights, strict=True)
            if q.name.startswith("profile:")]
    assert len(camp) + len(marg) + len(prof) == len(plan.queries) and camp and marg and prof
    assert math.isclose(sum(w for _, w in camp), CAMPAIGN_SHARE)
    assert math.isclose(sum(w for _, w in prof), PROFILE_SHARE)
    assert math.isclose(math.fsum(plan.weights), 1.0)
    # tag profile: per level of each grocery life tag, tag spend <= total spend, both clamped
    clamp = round(PROFILE_CLAMP_SEK["grocery"] * 100)
    assert {q.name.split(":")[1] for q, _ in prof} == {"pet", "baby", "meat", "fish", "leisure",
                                                        "category"}
    for q, _ in prof:
        assert q.attributes == (q.name.split(":")[1],) and q.sensitivity_l2 == clamp
    sums = {q.name: q.counts for q, _ in prof}
    # category profile: one cell per grocery category, adding up to the clamped total spend
    cats = sums["profile:category:cents"]
    assert len(cats) == len(plan.domain["category"]) and (cats >= 0).all()
    assert abs(int(cats.sum()) - int(sums["profile:pet:total_cents"].sum())) <= len(cats) * (
        plan.n_customers)
    assert all((sums[f"profile:{t}:tag_cents"] <= sums[f"profile:{t}:total_cents"]).all()
               for t in ("pet", "baby"))
    spend = [q for q, _ in camp if q.name.endswith(":spend_cents")]
    assert all(q.sensitivity_l2 == round(spend_clamp("grocery") * 100) for q in spend)
    cost = [q for q, _ in camp if q.name.endswith(":cost_cents")]
    assert cost and all(q.sensitivity_l2 == round(COST_CLAMP_SEK["grocery"] * 100) for q in cost)
    # amounts per arm only, counts per (arm, redeemed); per-level counts one attribute at a time
    assert all(q.attributes == ("arm",) for q in spend + cost)
    # the spend gap again as one cell (treated minus control), at the spend's sensitivity
    diff = {q.name: q for q, _ in camp if q.name.endswith(":spend_diff_cents")}
    assert len(diff) == len(spend)
    for q in spend:
        d = diff[q.name.replace(":spend_cents", ":spend_diff_cents")]
        assert d.attributes == () and d.counts.tolist() == [int(q.counts[0] - q.counts[1])]
        assert d.sensitivity_l2 == q.sensitivity_l2
    # a partner offer gives no discount: no cost table for it, one for every other campaign
    kinds = {q.name.split(":")[1]: q.name.split(":")[2] for q, _ in camp}
    assert {q.name.split(":")[1] for q in cost} == {k for k, kind in kinds.items()
                                                     if kind != "partner"}
    assert "partner" in kinds.values()
    by_level = [q for q, _ in camp if ":counts_by_" in q.name]
    assert by_level and all(len(q.attributes) == 3 for q in by_level)
    # each campaign's counts still add up to its exposures in every table
    first = [q for q, _ in camp if q.name.startswith("campaign:1:")]
    assert len({int(q.counts.sum()) for q in first if "counts" in q.name}) == 1
    assert all(q.sensitivity_l2 == 1 for q, _ in marg)
    # one feature row per consenting customer: each marginal sums to that count
    assert all(int(q.counts.sum()) == plan.n_customers for q, _ in marg)
    assert all(a in SCHEMA for q, _ in marg for a in q.attributes)


def _snapshot(owner: Path, out_dir: Path) -> tuple[bytes, list[str], int]:
    budget = PrivacyBudget.for_owner(owner)
    return ((owner / "ledger.sqlite").read_bytes(), sorted(p.name for p in out_dir.iterdir()),
            len(budget.ledger.entries()))


@pytest.mark.parametrize("skip_precheck", [False, True])
def test_over_budget_changes_neither_ledger_nor_output(
        small_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        skip_precheck: bool) -> None:
    owner = _owner(small_world / "grocery_2", tmp_path / "owner")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    PrivacyBudget.for_owner(owner).charge(
        __import__("privacy").DpEvent(kind="gaussian", rho=0.05), requester="t",
        purpose="earlier work", mechanism="gaussian", parameters={}, sensitivity="L2: 1")
    if skip_precheck:  # the atomic check inside the ledger must refuse on its own
        monkeypatch.setattr(tr, "_precheck", lambda budget, rho: None)
    before = _snapshot(owner, out_dir)
    with pytest.raises(BudgetExceeded) as err:
        release_owner(owner, epsilon=1.0, requester="t", purpose="too much",
                      out=out_dir / "r.json")
    assert "cap 2" in str(err.value) and "Nothing was charged" in str(err.value)
    assert err.value.remaining_epsilon < 1.0  # type: ignore[attr-defined]
    assert _snapshot(owner, out_dir) == before


def test_an_owner_without_ledger_is_refused(small_world: Path, tmp_path: Path) -> None:
    owner = _owner(small_world / "grocery_2", tmp_path / "owner", ledger=False)
    with pytest.raises(UnknownOwner, match="ledger init"):
        release_owner(owner, epsilon=0.5, requester="t", purpose="p", out=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists() and not (owner / "ledger.sqlite").exists()


def test_json_round_trip_keeps_counts(released: tuple[Path, Release, Path]) -> None:
    _, rel, out = released
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data["measurements"]) == len(rel.measurements)
    assert all(isinstance(c, int) for m in data["measurements"] for c in m["counts"])


def test_chunked_features_equal_unchunked(small_world: Path) -> None:
    from retail.load import load_merchant
    from twins.features import features

    m = load_merchant(small_world / "grocery_1")
    whole = features(m.tables, "grocery", m.info.period_end, chunk_customers=None)
    parts = features(m.tables, "grocery", m.info.period_end, chunk_customers=700)
    assert whole.height > 2000 and parts.equals(whole)
