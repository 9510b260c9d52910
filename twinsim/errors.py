"""The exception tree of twinsim, in one place.

Every error speaks to the person who made it: what was wrong, where (file, row, column,
value), and what to do. Packages raise these (or ``ValueError`` from value-object
construction, naming the field and the value).

    TwinsimError
    ├── DataValidationError      a merchant file broke the data model (retail)
    ├── PrivacyError             privacy core (privacy)
    │   ├── BudgetExceeded       a charge would exceed the owner's cap; nothing changed
    │   ├── LedgerIntegrityError the hash chain or the totals do not hold
    │   └── UnknownOwner         no ledger/owner at the given place
    ├── CohortTooSmall           DP-estimated cohort size below the minimum (twins)
    └── OfferError               an offer definition is invalid (simulation); also ValueError
"""

from __future__ import annotations

__all__ = [
    "BudgetExceeded",
    "CohortTooSmall",
    "DataValidationError",
    "LedgerIntegrityError",
    "OfferError",
    "PrivacyError",
    "TwinsimError",
    "UnknownOwner",
]


class TwinsimError(Exception):
    """Base of every error twinsim raises on purpose."""


class DataValidationError(TwinsimError):
    """A merchant data file broke the data model. ``offences`` lists the first few."""

    def __init__(self, message: str, *, offences: list[dict[str, object]] | None = None,
                 count: int = 0) -> None:
        super().__init__(message)
        self.offences = offences or []
        self.count = count


class PrivacyError(TwinsimError):
    """Base of privacy-core errors."""


class BudgetExceeded(PrivacyError):
    """A request would exceed the owner's privacy cap; the ledger is unchanged.

    Carries the ledger's figures (ε at the owner's δ) so callers can show them.
    """

    def __init__(self, message: str, *, spent_epsilon: float = float("nan"),
                 remaining_epsilon: float = float("nan"),
                 requested_epsilon: float = float("nan")) -> None:
        super().__init__(message)
        self.spent_epsilon = spent_epsilon
        self.remaining_epsilon = remaining_epsilon
        self.requested_epsilon = requested_epsilon


class LedgerIntegrityError(PrivacyError):
    """The ledger's hash chain or recorded totals do not hold."""


class UnknownOwner(PrivacyError):
    """No ledger or data owner at the given place."""


class CohortTooSmall(TwinsimError):
    """The DP-estimated size of a cohort is below the minimum for simulation."""


class OfferError(TwinsimError, ValueError):
    """An offer definition is invalid."""
