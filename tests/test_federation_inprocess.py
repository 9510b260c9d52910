"""The embedded federation: charges before updates, refusals, disconnects, the catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from federation.budget import dpsgd_spent
from federation.demo import write_demo_merchant
from federation.hub import Hub
from federation.inprocess import InProcessFederation
from federation.model import build_model, get_weights
from federation.node import DataOwner, ModelUpdate
from federation.releases import ReleaseRequest
from federation.rounds import run_training
from federation.training import RoundSettings
from privacy.audit import verify_ledger
from twinsim.errors import BudgetExceeded

MERCHANTS = {"grocery_1": "grocery", "deli_1": "organic_deli", "cafe_1": "cafe"}
SETTINGS = RoundSettings(rounds=3, target_epsilon=1.0, expected_batch=64, steps_per_round=4)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    for i, (name, mtype) in enumerate(MERCHANTS.items()):
        write_demo_merchant(root / name, merchant_id=name, merchant_type=mtype,
                            n_customers=300, seed=i)
    return root


@pytest.fixture()
def folders(demo_root: Path, tmp_path: Path) -> dict[str, Path]:
    """Fresh copies (each test starts with empty ledgers)."""
    return {n: Path(shutil.copytree(demo_root / n, tmp_path / n)) for n in MERCHANTS}


def _fed(folders: dict[str, Path], **caps: float) -> InProcessFederation:
    owners = {n: DataOwner(f, seed=i, cap_epsilon=caps.get(n))
              for i, (n, f) in enumerate(folders.items())}
    return InProcessFederation(owners)


def test_every_round_is_charged_before_it_leaves_and_its_hash_recorded(
        folders: dict[str, Path]) -> None:
    fed = _fed(folders)
    result = fed.train(SETTINGS)
    assert all(len(r.took_part) == 3 for r in result.rounds)
    for name, owner in fed.owners.items():
        entries = [e for e in owner.ledger.entries() if e.kind != "open_period"]
        charges = [e for e in entries if e.kind == "charge"]
        released = {e.ref_entry: e.release_hash for e in entries if e.kind == "released"}
        assert all(f"round {r}" in c.purpose for r, c in zip((1, 2, 3), charges, strict=True))
        # each update's digest is recorded against the charge entered before it
        mine = [u for u in result.updates if u.owner == owner.ledger.pseudonym]
        assert [released[c.entry_id] for c in charges] == [u.digest for u in mine]
        assert all(released_id > c.entry_id for c in charges for released_id in
                   [e.entry_id for e in entries if e.ref_entry == c.entry_id])
        assert verify_ledger(owner.ledger.path).ok, name


def test_ledger_epsilon_matches_opacus_and_dp_accounting(folders: dict[str, Path]) -> None:
    fed = _fed({"deli_1": folders["deli_1"]})
    result = fed.train(SETTINGS)
    (rep,) = fed.report(result)
    assert rep.rounds_taken == 3
    assert rep.epsilon_charged <= SETTINGS.target_epsilon + 1e-6
    assert rep.epsilon_charged == pytest.approx(rep.epsilon_opacus, rel=0.03)
    assert rep.epsilon_pld <= rep.epsilon_charged  # PLD is tighter, never looser
    assert rep.epsilon_pld > 0.5 * rep.epsilon_charged


def test_an_owner_over_budget_refuses_and_the_run_goes_on(folders: dict[str, Path]) -> None:
    fed = _fed(folders, cafe_1=0.6)  # the run wants ε = 1 over 3 rounds; cafe can afford ~1
    result = fed.train(SETTINGS)
    cafe = fed.owners["cafe_1"].ledger
    refused = [r for r in result.rounds if cafe.pseudonym in r.refused]
    assert refused and all("budget exceeded" in r.refused[cafe.pseudonym] for r in refused)
    assert all(len(r.took_part) >= 2 and r.aggregated for r in result.rounds)
    spent = dpsgd_spent(cafe, result.run_id)
    assert spent["rounds"] == 3 - len(refused)  # refusals wrote nothing
    assert cafe.head().spent_epsilon <= 0.6
    assert verify_ledger(cafe.path).ok


def test_a_node_failing_mid_round_corrupts_neither_ledger_nor_model(
        folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import federation.node as node

    fed = _fed(folders)
    victim = fed.owners["grocery_1"]
    real = node.local_round
    calls = {"n": 0}

    def flaky(*args: object, **kw: object) -> object:
        calls["n"] += 1
        if calls["n"] == 4:  # grocery_1 is asked first in each round: round 2, after charge
            raise ConnectionResetError("node went away mid-round")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(node, "local_round", flaky)
    result = fed.train(SETTINGS)
    p = victim.ledger.pseudonym
    assert p in result.rounds[1].failed and p not in result.rounds[1].took_part
    assert p in result.rounds[2].took_part  # it comes back next round
    assert all(np.isfinite(v).all() for v in result.weights.values())
    report = verify_ledger(victim.ledger.path)
    assert report.ok and len(report.unreleased_charges) == 1  # wasted, never refunded


def test_malformed_or_stale_updates_are_dropped_not_averaged() -> None:
    settings = RoundSettings(rounds=2, target_epsilon=1.0)

    def ask(r: int, w: dict[str, np.ndarray]) -> dict[str, ModelUpdate | BaseException]:
        good = {k: v + 1.0 for k, v in w.items()}
        nan = {k: np.full_like(v, np.nan) for k, v in w.items()}
        return {"a": ModelUpdate(owner="a", run_id="run", round_no=r, took_part=True,
                                 weights=good),
                "b": ModelUpdate(owner="b", run_id="run", round_no=r, took_part=True,
                                 weights=nan),
                "c": ModelUpdate(owner="c", run_id="old", round_no=r, took_part=True,
                                 weights=nan),
                "d": TimeoutError("no reply")}

    start = get_weights(build_model(settings.model))
    result = run_training(ask, {"a": 1.0, "b": 1.0}, settings, run_id="run", initial=start)
    assert [r.took_part for r in result.rounds] == [("a",), ("a",)]
    assert set(result.rounds[0].failed) == {"b", "c", "d"}
    for k, v in result.weights.items():
        np.testing.assert_allclose(v, start[k] + 2.0, rtol=1e-6)


def test_release_is_charged_and_catalogued_and_queried(folders: dict[str, Path],
                                                      tmp_path: Path) -> None:
    hub = Hub(tmp_path / "hub" / "catalogue.sqlite")
    owner = DataOwner(folders["deli_1"], cap_epsilon=1.0)
    hub.register_owner(owner.describe())
    req = ReleaseRequest(requester="hub", purpose="twins for a trial", epsilon=0.5,
                         cliques=(("region",), ("tenure", "frequency")))
    release = owner.answer_release(req)
    assert hub.add_release(release) and not hub.add_release(release)
    assert hub.releases(merchant_types=["organic_deli"], regions=["Uppsala"]) == [release]
    assert hub.releases(merchant_types=["cafe"]) == []
    assert release.owner == owner.ledger.pseudonym and "deli_1" not in release.to_json()
    with pytest.raises(BudgetExceeded):
        owner.answer_release(ReleaseRequest(requester="hub", purpose="again", epsilon=0.95))
    assert verify_ledger(owner.ledger.path).ok


def test_cli_federate_reports_privacy_loss_and_participation_per_owner(
        folders: dict[str, Path]) -> None:
    import json

    from typer.testing import CliRunner

    from retail.merchant import WorldInfo, write_world_info
    from twinsim.cli import app

    world = next(iter(folders.values())).parent
    write_world_info(world, WorldInfo(kind="synthetic", merchants=tuple(folders)))
    out = CliRunner().invoke(app, ["federate", "--world", str(world), "--rounds", "2",
                                   "--epsilon", "0.8", "--batch", "64", "--steps", "2",
                                   "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output[out.output.index("{"):])
    owners = {o["merchant"]: o for o in report["owners"]}
    assert set(owners) == set(MERCHANTS)
    for o in owners.values():
        assert o["rounds_taken"] == 2 and 0 < o["epsilon_charged"] <= 0.8
        assert o["owner"].startswith("own-") and o["holdout_rows"] > 0
