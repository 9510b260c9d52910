"""The one object that hands out an owner's privacy budget.

:class:`PrivacyBudget` wraps the owner's :class:`~privacy.ledger.Ledger`: it pre-checks a
request (:meth:`PrivacyBudget.precheck`, no write), charges it atomically against the cap
(:meth:`PrivacyBudget.charge`), reports spent and remaining ε, and its :meth:`state` is a
plain snapshot (the durable state *is* the ledger file: reopening restores it).

An owner folder is a merchant folder holding ``merchant.json`` (``merchant_id``,
``merchant_type``); its ledger lives at ``<owner>/ledger.sqlite`` unless a path is given.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from privacy.accounting import (
    DpEvent,
    compose_epsilon,
        round_down,
    validate_delta,
    validate_epsilon,
)
from privacy.ledger import Ledger, LedgerEntry
from privacy.units import CUSTOMER, PrivacyUnit
from twinsim.errors import UnknownOwner

__all__ = ["LEDGER_FILE", "BudgetCheck", "BudgetState", "PrivacyBudget", "read_owner"]

LEDGER_FILE = "ledger.sqlite"


def read_owner(owner_dir: str | Path) -> tuple[str, str, tuple[str, ...]]:
    """``(merchant_id, merchant_type, regions)`` from ``owner_dir/merchant.json``.

    Raises ``UnknownOwner`` when the folder is not an owner folder.
    """
    path = Path(owner_dir) / "merchant.json"
    if not path.is_file():
        raise UnknownOwner(f"{owner_dir}: not an owner folder (no merchant.json); point --owner "
                           "at a merchant folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        merchant_id, merchant_type = data["merchant_id"], data["merchant_type"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise UnknownOwner(f"{path}: unreadable or missing merchant_id/merchant_type "
                           f"({exc.__class__.__name__}: {exc})") from None
    if not (isinstance(merchant_id, str) and merchant_id and isinstance(merchant_type, str)):
        raise UnknownOwner(f"{path}: merchant_id and merchant_type must be non-empty strings")
    regions = data.get("regions", [])
    return merchant_id, merchant_type, tuple(str(r) for r in regions) if isinstance(
        regions, list) else ()


@dataclass(frozen=True, kw_only=True)
class BudgetCheck:
    """What a request would do, without charging it."""

    allowed: bool
    spent_epsilon: float
    spent_after: float
    cap_epsilon: float
    remaining_after: float


@dataclass(frozen=True, kw_only=True)
class BudgetState:
    """A snapshot of the budget (save it as JSON; the ledger restores the live state)."""

    owner: str
    owner_pseudonym: str
    merchant_type: str
    period: str
    cap_epsilon: float
    delta: float
    spent_epsilon: float
    remaining_epsilon: float
    n_entries: int
    last_entry_hash: str
    ledger_path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PrivacyBudget:
    """Hands out one owner's budget; every charge goes through its ledger first."""

    def __init__(self, ledger: Ledger, *, regions: tuple[str, ...] = ()) -> None:
        self.ledger = ledger
        self.regions = regions  # public metadata from merchant.json, copied into releases

    @classmethod
    def for_owner(cls, owner_dir: str | Path, *, ledger_path: str | Path | None = None,
                  ) -> PrivacyBudget:
        merchant_id, _, regions = read_owner(owner_dir)
        ledger = Ledger(ledger_path or Path(owner_dir) / LEDGER_FILE)
        if ledger.owner != merchant_id:
            raise UnknownOwner(f"{ledger.path}: ledger belongs to {ledger.owner!r}, not to the "
                               f"owner folder's merchant {merchant_id!r}")
        return cls(ledger, regions=regions)

    @classmethod
    def init_owner(cls, owner_dir: str | Path, *, period: str, cap_epsilon: float = 2.0,
                   delta: float = 1e-8, ledger_path: str | Path | None = None) -> PrivacyBudget:
        """Create the owner's ledger (refuses to overwrite one)."""
        merchant_id, merchant_type, regions = read_owner(owner_dir)
        ledger = Ledger.create(ledger_path or Path(owner_dir) / LEDGER_FILE, owner=merchant_id,
                               merchant_type=merchant_type, period=period,
                               cap_epsilon=cap_epsilon, delta=delta)
        return cls(ledger, regions=regions)

    # -- reporting ----------------------------------------------------------------------
    @property
    def delta(self) -> float:
        return self.ledger.head().delta

    @property
    def spent(self) -> float:
        return self.ledger.head().spent_epsilon

    @property
    def remaining(self) -> float:
        return self.ledger.head().remaining_epsilon

    def state(self) -> BudgetState:
        h = self.ledger.head()
        return BudgetState(owner=self.ledger.owner, owner_pseudonym=self.ledger.pseudonym,
                           merchant_type=self.ledger.merchant_type, period=h.period,
                           cap_epsilon=h.cap_epsilon, delta=h.delta,
                           spent_epsilon=h.spent_epsilon, remaining_epsilon=h.remaining_epsilon,
                           n_entries=h.n_entries, last_entry_hash=h.last_entry_hash,
                           ledger_path=str(self.ledger.path))

    def _period_events(self) -> list[DpEvent]:
        period = self.ledger.head().period
        return [e.event() for e in self.ledger.entries()
                if e.kind == "charge" and e.period == period]

    # -- checking and charging ----------------------------------------------------------
    def precheck(self, event: DpEvent) -> BudgetCheck:
        """Would ``event`` fit? Advisory only: :meth:`charge` re-checks atomically."""
        h = self.ledger.head()
        after = compose_epsilon([*self._period_events(), event], h.delta)
        return BudgetCheck(allowed=after <= h.cap_epsilon, spent_epsilon=h.spent_epsilon,
                           spent_after=after, cap_epsilon=h.cap_epsilon,
                           remaining_after=round_down(max(0.0, h.cap_epsilon - after)))

    def charge(self, event: DpEvent, *, requester: str, purpose: str, mechanism: str,
               parameters: dict[str, Any], sensitivity: str,
               privacy_unit: PrivacyUnit = CUSTOMER) -> LedgerEntry:
        """Charge ``event`` (before any data is touched); ``BudgetExceeded`` if over the cap."""
        delta = self.delta
        standalone = compose_epsilon([event], delta)
        return self.ledger.charge(event, requester=requester, purpose=purpose,
                                  mechanism=mechanism, parameters=parameters,
                                  sensitivity=sensitivity, privacy_unit=privacy_unit.label(),
                                  event_epsilon=standalone)

    def record_release(self, charge: LedgerEntry, release_hash: str, *,
                       requester: str) -> LedgerEntry:
        """Record what left (its content hash) against the charge that paid for it."""
        return self.ledger.record_release(charge.entry_id, release_hash, requester=requester)

    def charge_dpsgd_rounds(self, *, noise_multiplier: float, sampling_rate: float, steps: int,
                            clip_norm: float, requester: str, purpose: str) -> LedgerEntry:
        """Charge ``steps`` Poisson-subsampled Gaussian DP-SGD rounds (Opacus) before training.

        Sensitivity: each example's gradient is clipped to L2 ≤ ``clip_norm`` and one
        customer contributes one example (one feature row), so add/remove changes the summed
        gradient by at most ``clip_norm``; the noise std is ``noise_multiplier × clip_norm``.
        """
        if not (isinstance(clip_norm, (int, float)) and math.isfinite(clip_norm)
                and clip_norm > 0):
            raise ValueError(f"clip_norm: must be a finite number > 0 (got {clip_norm!r})")
        event = DpEvent(kind="dpsgd", noise_multiplier=float(noise_multiplier),
                        sampling_rate=float(sampling_rate), steps=steps)
        return self.charge(event, requester=requester, purpose=purpose, mechanism="dpsgd",
                           parameters={"clip_norm": float(clip_norm),
                                       "noise_multiplier": float(noise_multiplier),
                                       "sampling_rate": float(sampling_rate), "steps": steps},
                           sensitivity=f"L2 per customer ≤ clip_norm={clip_norm:g}")

    def open_period(self, period: str, *, cap_epsilon: float | None = None,
                    delta: float | None = None, requester: str) -> LedgerEntry:
        """Open a new period (explicit and logged); cap and δ default to the current ones."""
        h = self.ledger.head()
        cap = h.cap_epsilon if cap_epsilon is None else validate_epsilon(cap_epsilon, "cap")
        d = h.delta if delta is None else validate_delta(delta, allow_zero=False)
        return self.ledger.open_period(period, cap_epsilon=cap, delta=d, requester=requester)
