"""The ledger: cap checks, periods, concurrent writers, crashes and tampering."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from privacy._chain import chain_hash
from privacy.accounting import DpEvent, compose_epsilon
from privacy.audit import verify_ledger
from privacy.budget import PrivacyBudget
from privacy.ledger import Ledger, LedgerEntry
from privacy.release import CountQuery, Release, measure_and_release
from twinsim.errors import BudgetExceeded, UnknownOwner

DOMAIN = {"region": ["a", "b", "c"]}


def make_owner(root: Path, merchant_id: str = "m-1") -> Path:
    folder = root / merchant_id
    folder.mkdir(parents=True)
    (folder / "merchant.json").write_text(json.dumps(
        {"merchant_id": merchant_id, "merchant_type": "grocery"}))
    return folder


@pytest.fixture
def budget(tmp_path: Path) -> PrivacyBudget:
    return PrivacyBudget.init_owner(make_owner(tmp_path), period="2025")


def _charge(b: PrivacyBudget, rho: float = 0.01) -> LedgerEntry:
    return b.charge(DpEvent(kind="gaussian", rho=rho), requester="test", purpose="unit test",
                    mechanism="gaussian", parameters={}, sensitivity="L2: 1")


def _release(b: PrivacyBudget, rho: float = 1e-4) -> Release:
    q = CountQuery(name="region", attributes=("region",),
                   counts=np.array([40, 7, 0], dtype=np.int64))
    return measure_and_release(b, requester="test", purpose="unit test", domain=DOMAIN,
                               queries=[q], rho=rho)


def test_charges_compose_with_the_accountant_not_a_naive_sum(budget):
    for _ in range(3):
        _charge(budget, rho=0.005)
    want = compose_epsilon([DpEvent(kind="gaussian", rho=0.005)] * 3, 1e-8)
    assert budget.spent == want
    assert want < 3 * compose_epsilon([DpEvent(kind="gaussian", rho=0.005)], 1e-8)
    assert verify_ledger(budget.ledger.path).ok


def test_over_the_cap_is_refused_and_changes_nothing(budget):
    _charge(budget, rho=0.05)
    before = budget.ledger.path.read_bytes(), budget.state()
    with pytest.raises(BudgetExceeded, match="remaining") as info:
        _charge(budget, rho=0.05)
    assert info.value.remaining_epsilon == budget.remaining  # type: ignore[attr-defined]
    assert budget.state() == before[1]
    assert len(budget.ledger.entries()) == 2
    assert not budget.precheck(DpEvent(kind="gaussian", rho=0.05)).allowed
    assert budget.precheck(DpEvent(kind="gaussian", rho=1e-4)).allowed


def test_new_period_is_explicit_and_logged(budget):
    _charge(budget, rho=0.05)
    with pytest.raises(ValueError, match="already opened"):
        budget.open_period("2025", requester="compliance")
    entry = budget.open_period("2026", cap_epsilon=1.0, requester="compliance")
    assert entry.kind == "open_period" and budget.spent == 0.0
    assert budget.state().cap_epsilon == 1.0
    _charge(budget, rho=0.01)
    assert verify_ledger(budget.ledger.path).ok


def test_release_is_charged_first_and_recorded(budget):
    release = _release(budget)
    entries = budget.ledger.entries()
    charge, released = entries[-2], entries[-1]
    assert (charge.kind, released.kind) == ("charge", "released")
    assert release.ledger_entry_id == charge.entry_id
    assert release.ledger_entry_hash == charge.entry_hash
    assert released.release_hash == release.content_hash and released.ref_entry == charge.entry_id


def test_dpsgd_rounds_are_charged(budget):
    entry = budget.charge_dpsgd_rounds(noise_multiplier=1.0, sampling_rate=0.01, steps=50,
                                       clip_norm=1.0, requester="federation", purpose="round 1")
    assert entry.mechanism == "dpsgd" and budget.spent == entry.epsilon > 0
    assert verify_ledger(budget.ledger.path).ok


# -- bad parameters and unknown owners ------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"cap_epsilon": -1.0}, "cap_epsilon"), ({"cap_epsilon": float("nan")}, "cap_epsilon"),
    ({"delta": 1.0}, "delta"), ({"delta": -1e-9}, "delta"), ({"delta": 0.0}, "delta"),
    ({"period": ""}, "period")])
def test_bad_ledger_parameters_refused(tmp_path, kwargs, match):
    args = {"period": "2025", **kwargs}
    with pytest.raises(ValueError, match=match):
        PrivacyBudget.init_owner(make_owner(tmp_path), **args)


def test_bad_charge_parameters_refused(budget):
    with pytest.raises(ValueError, match="rho"):
        _charge(budget, rho=float("nan"))
    with pytest.raises(ValueError, match="rho"):
        _charge(budget, rho=-0.1)
    with pytest.raises(ValueError, match="sensitivity"):
        CountQuery(name="x", attributes=("region",), counts=np.zeros(3, dtype=np.int64),
                   sensitivity_l2=0)
    with pytest.raises(ValueError, match="epsilon"):
        measure_and_release(budget, requester="t", purpose="p", domain=DOMAIN, queries=[
            CountQuery(name="x", attributes=("region",), counts=np.zeros(3, dtype=np.int64))],
            epsilon=-1.0, mechanism="laplace")
    assert len(budget.ledger.entries()) == 1


def test_unknown_owner_folders_refused(tmp_path):
    with pytest.raises(UnknownOwner, match=r"merchant\.json"):
        PrivacyBudget.for_owner(tmp_path / "nowhere")
    owner = make_owner(tmp_path)
    with pytest.raises(UnknownOwner, match="ledger init"):
        PrivacyBudget.for_owner(owner)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "merchant.json").write_text("{}")
    with pytest.raises(UnknownOwner, match="merchant_id"):
        PrivacyBudget.for_owner(tmp_path / "bad")


def test_ledger_is_never_overwritten(budget, tmp_path):
    with pytest.raises(FileExistsError):
        PrivacyBudget.init_owner(tmp_path / "m-1", period="2025")


# -- concurrency ----------------------------------------------------------------------------

def _racer(owner: str, barrier) -> None:  # pragma: no cover - runs in a child
    b = PrivacyBudget.for_owner(owner)
    barrier.wait()
    try:
        _charge(b, rho=0.004)
    except BudgetExceeded:
        os._exit(3)
    os._exit(0)


def test_fifty_racing_processes_never_exceed_the_cap(budget):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(50)
    owner = str(budget.ledger.path.parent)
    procs = [ctx.Process(target=_racer, args=(owner, barrier)) for _ in range(50)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    codes = [p.exitcode for p in procs]
    assert set(codes) <= {0, 3}, codes
    charges = [e for e in budget.ledger.entries() if e.kind == "charge"]
    fits = max(k for k in range(51)
               if compose_epsilon([DpEvent(kind="gaussian", rho=0.004)] * k, 1e-8) <= 2.0)
    assert codes.count(0) == len(charges) == fits < 50  # none lost, none over
    assert budget.spent <= 2.0
    assert verify_ledger(budget.ledger.path).ok


# -- crash injection ------------------------------------------------------------------------

def _release_forever(owner: Path, out: Path) -> None:  # pragma: no cover - killed child
    b = PrivacyBudget.for_owner(owner)
    while True:
        release = _release(b, rho=1e-7)
        tmp = out / f".{release.release_id}.tmp"
        tmp.write_text(release.to_json())
        tmp.rename(out / f"{release.release_id}.json")  # publication is atomic


def test_sigkill_between_charge_and_release_never_refunds(budget, tmp_path):
    owner, out = budget.ledger.path.parent, tmp_path / "published"
    out.mkdir()
    _release(budget, rho=1e-7)  # warm caches so each trial's window covers the whole cycle
    delays = np.random.default_rng(20250101).uniform(0.0, 0.15, size=200)
    for delay in delays:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                _release_forever(owner, out)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    report = verify_ledger(budget.ledger.path)
    assert report.ok, report.problems
    entries = {e.entry_id: e for e in budget.ledger.entries()}
    released = {e.release_hash: e for e in entries.values() if e.kind == "released"}
    published = [Release.from_json(p.read_text()) for p in out.glob("*.json")]
    assert published  # the trials got far enough to publish
    for r in published:  # everything that left was charged first, and recorded
        charge = entries[r.ledger_entry_id]
        assert charge.kind == "charge" and charge.entry_hash == r.ledger_entry_hash
        assert released[r.content_hash].ref_entry == charge.entry_id
    charges = [e for e in entries.values() if e.kind == "charge"]
    assert len(charges) >= len(published)
    assert report.unreleased_charges  # some kills landed between charge and release: wasted
    head = budget.ledger.head()
    replay = compose_epsilon([e.event() for e in charges], head.delta)
    assert head.spent_epsilon == replay == report.spent_epsilon


# -- tampering ------------------------------------------------------------------------------

@pytest.fixture
def tamper_copy(budget, tmp_path):
    for _ in range(3):
        _release(budget)
    assert verify_ledger(budget.ledger.path).ok  # 7 entries: open, 3 × (charge, released)

    def copy() -> Path:
        path = tmp_path / f"copy{len(list(tmp_path.glob('copy*')))}.sqlite"
        shutil.copy(budget.ledger.path, path)
        for suffix in ("-wal", "-shm"):
            side = Path(str(budget.ledger.path) + suffix)
            if side.exists():
                shutil.copy(side, str(path) + suffix)
        with sqlite3.connect(path) as conn:  # a tamperer with file access drops the guards
            conn.execute("DROP TRIGGER ledger_entries_no_update")
            conn.execute("DROP TRIGGER ledger_entries_no_delete")
        return path
    return copy


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for s in statements:
        conn.execute(s)
    conn.commit()
    conn.close()


def test_triggers_refuse_update_and_delete(budget):
    _charge(budget)
    with sqlite3.connect(budget.ledger.path) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("UPDATE ledger_entries SET epsilon = 0 WHERE entry_id = 2")
    with sqlite3.connect(budget.ledger.path) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("DELETE FROM ledger_entries WHERE entry_id = 2")


@pytest.mark.parametrize(("statements", "first", "words"), [
    (["UPDATE ledger_entries SET purpose = 'innocent' WHERE entry_id = 4"], 4, "edited"),
    (["UPDATE ledger_entries SET rho = rho / 10 WHERE entry_id = 2"], 2, "edited"),
    (["DELETE FROM ledger_entries WHERE entry_id = 3"], 4, "deleted"),
    (["DELETE FROM ledger_entries WHERE entry_id = 7"], 7, "totals"),
    (["UPDATE ledger_entries SET entry_id = 100 WHERE entry_id = 4",
      "UPDATE ledger_entries SET entry_id = 4 WHERE entry_id = 5",
      "UPDATE ledger_entries SET entry_id = 5 WHERE entry_id = 100"], 4, "reordered"),
    (["UPDATE ledger_entries SET entry_id = entry_id + 1000 WHERE entry_id >= 4",
      "UPDATE ledger_entries SET entry_id = entry_id - 999 WHERE entry_id >= 1000",
      "INSERT INTO ledger_entries SELECT 4, owner, period, kind, requester, purpose, "
      "mechanism, parameters, privacy_unit, sensitivity, rho, epsilon, delta, cap_epsilon, "
      "spent_epsilon, ref_entry, release_hash, software_version, created_at, prev_hash, "
      "'f' || substr(entry_hash, 2) FROM ledger_entries WHERE entry_id = 3"], 4, "inserted"),
    (["UPDATE ledger_head SET spent_epsilon = 0.0"], 7, "totals"),
])
def test_tampering_fails_verify_naming_the_entry(tamper_copy, statements, first, words):
    path = tamper_copy()
    _sql(path, *statements)
    report = verify_ledger(path)
    assert not report.ok
    assert report.first_broken_entry == first, report.problems
    assert words in " ".join(report.problems)


def test_appended_entry_with_a_valid_hash_still_fails_on_totals(tamper_copy):
    path = tamper_copy()
    last = Ledger(path).entries()[-1]
    fake = {**last.hashed_fields(), "entry_id": 8, "prev_hash": last.entry_hash,
            "purpose": "forged"}
    forged = LedgerEntry(**fake, entry_hash=chain_hash(last.entry_hash, fake))
    cols = [*fake, "entry_hash"]
    conn = sqlite3.connect(path)
    conn.execute(f"INSERT INTO ledger_entries ({', '.join(cols)}) VALUES "
                 f"({', '.join('?' * len(cols))})", [getattr(forged, c) for c in cols])
    conn.commit()
    conn.close()
    report = verify_ledger(path)
    assert not report.ok and report.first_broken_entry == 8
