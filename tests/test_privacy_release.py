"""Releases: content, JSON round trip, hash check, no identifiers; noise preview; no stray
randomness anywhere in privacy/."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from privacy.budget import PrivacyBudget
from privacy.preview import QueryPlan, preview
from privacy.release import CountQuery, Release, measure_and_release
from privacy.units import histogram, marginal_histogram

PRIVACY_DIR = Path(__file__).resolve().parent.parent / "privacy"
DOMAIN = {"region": ["Stockholm", "Göteborg", "Malmö"], "tier": ["budget", "premium"]}


@pytest.fixture
def budget(tmp_path: Path) -> PrivacyBudget:
    folder = tmp_path / "shop-42"
    folder.mkdir()
    (folder / "merchant.json").write_text(json.dumps(
        {"merchant_id": "shop-42", "merchant_type": "grocery",
         "regions": ["Stockholm", "Malmö"]}))
    return PrivacyBudget.init_owner(folder, period="2025")


def _queries(n: int = 500) -> tuple[list[CountQuery], np.ndarray]:
    rng = np.random.default_rng(7)  # simulated input data, not noise
    ids = np.arange(10_000_000, 10_000_000 + n)
    region, tier = rng.integers(0, 3, n), rng.integers(0, 2, n)
    return [CountQuery(name="region", attributes=("region",),
                       counts=histogram(region, 3, customer_ids=ids).counts),
            CountQuery(name="region_tier", attributes=("region", "tier"),
                       counts=marginal_histogram([region, tier], [3, 2]).counts)], ids


def test_release_round_trips_and_checks_its_hash(budget):
    queries, _ = _queries()
    release = measure_and_release(budget, requester="twins", purpose="marginals",
                                  domain=DOMAIN, queries=queries, rho=0.02,
                                  weights=[1, 3], regions=("Stockholm",))
    assert Release.from_json(release.to_json()) == release
    assert release.owner.startswith("own-") and "shop-42" not in release.to_json()
    m = release.measurement("region_tier")
    assert m.attributes == ("region", "tier") and len(m.counts) == 6
    assert m.rho == pytest.approx(0.015, rel=1e-6) and m.rho <= 0.015
    assert release.privacy_loss["rho"] <= 0.02
    assert release.privacy_loss["epsilon"] == budget.spent
    doc = json.loads(release.to_json())
    doc["measurements"][0]["counts"][0] += 1
    with pytest.raises(ValueError, match="content_hash"):
        Release.from_json(json.dumps(doc))
    doc = json.loads(release.to_json())
    doc["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version"):
        Release.from_json(json.dumps(doc))
    with pytest.raises(ValueError, match="content_hash"):
        replace(release, period="2024")


def test_release_contains_no_customer_ids_or_rows(budget):
    queries, ids = _queries()
    text = measure_and_release(budget, requester="twins", purpose="marginals", domain=DOMAIN,
                               queries=queries, rho=0.02).to_json()
    numbers = set(re.findall(r"-?\d+", text))
    assert not numbers & {str(i) for i in ids}
    assert "customer_id" not in text


def test_pseudonym_is_stable_across_releases(budget):
    queries, _ = _queries()
    a = measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN, queries=queries,
                            rho=0.001)
    b = measure_and_release(PrivacyBudget.for_owner(budget.ledger.path.parent), requester="t",
                            purpose="p", domain=DOMAIN, queries=queries, rho=0.001)
    assert a.owner == b.owner and a.release_id != b.release_id
    assert a.regions == b.regions == ("Stockholm", "Malmö")  # from merchant.json


def test_laplace_release_is_pure_dp(budget):
    queries, _ = _queries()
    release = measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN,
                                  queries=queries, epsilon=0.5, mechanism="laplace")
    assert release.privacy_loss["pure_epsilon"] <= 0.5 and budget.spent <= 0.5


def test_queries_must_fit_the_public_domain(budget):
    bad = CountQuery(name="region", attributes=("region",), counts=np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="domain gives 3"):
        measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN, queries=[bad],
                            rho=0.01)
    unknown = CountQuery(name="x", attributes=("age",), counts=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="not in the public domain"):
        measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN,
                            queries=[unknown], rho=0.01)
    assert len(budget.ledger.entries()) == 1  # refused before any charge


def test_preview_spends_nothing_and_matches_the_release_scale(budget):
    plan = [QueryPlan(name="region", cells=3), QueryPlan(name="region_tier", cells=6)]
    rows = preview(plan, n_customers=10_000, rho=0.02)
    assert len(budget.ledger.entries()) == 1
    queries, _ = _queries()
    release = measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN,
                                  queries=queries, rho=0.02)
    for row in rows:
        assert row.scale == release.measurement(row.name).scale
        assert row.noise_std == pytest.approx(row.scale, rel=1e-3)
        assert row.error95 == pytest.approx(1.96 * row.scale, abs=1.5)
    small = preview(plan, n_customers=100, rho=0.02)
    assert small[1].relative_error_cell > rows[1].relative_error_cell * 50
    lap = preview(plan, n_customers=1_000, epsilon=1.0, mechanism="laplace")
    assert lap[0].loss <= 0.5



def _stray_randomness(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in ("random", "torch")
                      or a.name.startswith("numpy.random")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in ("random", "torch") or \
                    node.module.startswith("numpy.random") or \
                    (node.module == "numpy" and any(a.name == "random" for a in node.names)):
                found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr == "random" and \
                isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy"):
            found.append("np.random")
    return found


def test_no_random_numpy_random_or_torch_noise_in_privacy_sources():
    offenders = {}
    for path in sorted(PRIVACY_DIR.rglob("*.py")):
        found = _stray_randomness(ast.parse(path.read_text(encoding="utf-8")))
        if found:
            offenders[path.name] = found
    assert offenders == {}
    assert _stray_randomness(ast.parse("import numpy as np\nx = np.random.normal()"))
    assert _stray_randomness(ast.parse("from random import gauss"))
