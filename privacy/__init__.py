"""privacy: the owner-side privacy core.

Privacy unit and contribution bounding (:mod:`privacy.units`), exact OpenDP noise
(:mod:`privacy.mechanisms`), accounting (:mod:`privacy.accounting`), the durable ledger
(:mod:`privacy.ledger`, :mod:`privacy.audit`), the budget object (:mod:`privacy.budget`),
``Release`` objects (:mod:`privacy.release`) and noise previews (:mod:`privacy.preview`).
See docs/PRIVACY.md.
"""

from privacy.accounting import (
    DpEvent,
    calibrate_dpsgd_noise,
    compose_epsilon,
    dpsgd_epsilon_pld,
    dpsgd_epsilon_rdp,
    zcdp_epsilon,
    zcdp_rho_for_epsilon,
)
from privacy.audit import VerifyReport, export_csv, export_json, verify_ledger
from privacy.budget import LEDGER_FILE, BudgetCheck, BudgetState, PrivacyBudget, read_owner
from privacy.ledger import Ledger, LedgerEntry, LedgerHead
from privacy.mechanisms import IntegerMechanism, calibrate_scale, loss_for_scale
from privacy.preview import NoisePreview, QueryPlan, preview
from privacy.release import CountQuery, Measurement, Release, measure_and_release
from privacy.units import (
    CUSTOMER,
    BoundedAggregate,
    PrivacyUnit,
    cap_rows_per_customer,
    capped_row_count,
    clamped_sum_cents,
    histogram,
    marginal_histogram,
    to_cents,
)

__all__ = [
    "CUSTOMER",
    "LEDGER_FILE",
    "BoundedAggregate",
    "BudgetCheck",
    "BudgetState",
    "CountQuery",
    "DpEvent",
    "IntegerMechanism",
    "Ledger",
    "LedgerEntry",
    "LedgerHead",
    "Measurement",
    "NoisePreview",
    "PrivacyBudget",
    "PrivacyUnit",
    "QueryPlan",
    "Release",
    "VerifyReport",
    "calibrate_dpsgd_noise",
    "calibrate_scale",
    "cap_rows_per_customer",
    "capped_row_count",
    "clamped_sum_cents",
    "compose_epsilon",
    "dpsgd_epsilon_pld",
    "dpsgd_epsilon_rdp",
    "export_csv",
    "export_json",
    "histogram",
    "loss_for_scale",
    "marginal_histogram",
    "measure_and_release",
    "preview",
    "read_owner",
    "to_cents",
    "verify_ledger",
    "zcdp_epsilon",
    "zcdp_rho_for_epsilon",
]
