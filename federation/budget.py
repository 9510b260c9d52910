"""Charging DP-SGD rounds to an owner's ledger (thin adapter over ``privacy.ledger``).

A round is ``steps`` Poisson-subsampled Gaussian mechanisms (one ``dpsgd`` event). It is
charged *before* the owner touches its data for the round; after the update is computed its
content hash is recorded against the charge, so an auditor can match what left with what was
paid. A round that fails after its charge leaves a charge without a release: wasted budget,
never refunded, and the hash chain stays intact.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from privacy.accounting import (
    DpEvent,
    calibrate_dpsgd_noise,
    compose_epsilon,
    dpsgd_epsilon_pld,
)
from privacy.budget import LEDGER_FILE, PrivacyBudget
from privacy.ledger import Ledger, LedgerEntry

__all__ = [
    "DEFAULT_CAP_EPSILON",
    "DEFAULT_DELTA",
    "LEDGER_FILE",
    "RoundCharge",
    "charge_round",
    "dpsgd_spent",
    "noise_for_run",
    "open_ledger",
    "record_update",
    "update_hash",
]

DEFAULT_CAP_EPSILON = 2.0
DEFAULT_DELTA = 1e-8
MECHANISM = "dpsgd"  # as privacy.budget.PrivacyBudget.charge_dpsgd_rounds writes it


def open_ledger(folder: str | Path, *, cap_epsilon: float = DEFAULT_CAP_EPSILON,
                delta: float = DEFAULT_DELTA) -> PrivacyBudget:
    """The owner's budget over ``<folder>/ledger.sqlite``, created (yearly period) if absent."""
    if (Path(folder) / LEDGER_FILE).is_file():
        return PrivacyBudget.for_owner(folder)
    try:
        return PrivacyBudget.init_owner(folder, period=str(_dt.date.today().year),
                                        cap_epsilon=cap_epsilon, delta=delta)
    except FileExistsError:  # another process created it between the check and now
        return PrivacyBudget.for_owner(folder)


@lru_cache(maxsize=256)
def noise_for_run(target_epsilon: float, sampling_rate: float, total_steps: int,
                  delta: float) -> float:
    """σ such that all the run's steps together cost at most ``target_epsilon`` (RDP)."""
    return calibrate_dpsgd_noise(target_epsilon, sampling_rate, total_steps, delta)


@dataclass(frozen=True, kw_only=True)
class RoundCharge:
    """A successful charge of one round."""

    entry_id: int
    round_epsilon: float  # this round alone, RDP, at the ledger's δ
    spent_epsilon: float  # the owner's composed total after the charge


def charge_round(budget: PrivacyBudget, *, run_id: str, round_no: int,
                 noise_multiplier: float, sampling_rate: float, steps: int,
                 max_grad_norm: float, requester: str) -> RoundCharge:
    """Charge one round through the privacy core, or raise ``BudgetExceeded`` (nothing written)."""
    entry = budget.charge_dpsgd_rounds(
        noise_multiplier=noise_multiplier, sampling_rate=sampling_rate, steps=steps,
        clip_norm=max_grad_norm, requester=requester,
        purpose=f"federated response model, run {run_id}, round {round_no}")
    return RoundCharge(entry_id=entry.entry_id, round_epsilon=entry.epsilon,
                       spent_epsilon=entry.spent_epsilon)


def update_hash(weights: Mapping[str, np.ndarray]) -> str:
    """sha256 over the update's names, shapes and float32 bytes (order-independent)."""
    h = hashlib.sha256()
    for k in sorted(weights):
        arr = np.ascontiguousarray(weights[k], dtype=np.float32)
        h.update(f"{k}:{arr.shape}\n".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def record_update(budget: PrivacyBudget, charge: RoundCharge, digest: str, *,
                  requester: str) -> LedgerEntry:
    return budget.ledger.record_release(charge.entry_id, digest, requester=requester)


def dpsgd_spent(ledger: Ledger, run_id: str | None = None) -> dict[str, float]:
    """ε of the DP-SGD charges (of one run, or all) by RDP and by PLD — the cross-check."""
    events = [e.event() for e in ledger.entries()
              if e.kind == "charge" and e.mechanism == MECHANISM
              and (run_id is None or f"run {run_id}," in e.purpose)]
    delta = ledger.head().delta
    if not events:
        return {"rounds": 0, "rdp": 0.0, "pld": 0.0, "opacus": 0.0}
    rdp = compose_epsilon(events, delta)
    same = len({(e.noise_multiplier, e.sampling_rate) for e in events}) == 1
    pld = (dpsgd_epsilon_pld(events[0].noise_multiplier, events[0].sampling_rate,
                             sum(e.steps for e in events), delta) if same else float("nan"))
    return {"rounds": len(events), "rdp": rdp, "pld": pld,
            "opacus": _opacus_epsilon(events, delta)}


def _opacus_epsilon(events: list[DpEvent], delta: float) -> float:
    """Opacus's own RDP accountant over the ledger's recorded rounds (independent code)."""
    from opacus.accountants import RDPAccountant  # heavy import, only for the cross-check

    acc = RDPAccountant()
    acc.history = [(e.noise_multiplier, e.sampling_rate, e.steps) for e in events]
    return float(acc.get_epsilon(delta))
