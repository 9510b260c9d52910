"""The app's facade over the packages: every page calls these functions and nothing else.

Each function turns plain inputs (paths as strings, numbers, offer fields) into package calls
and returns plain values or polars tables for display. Expensive calls are cached with
``st.cache_data`` (values) or ``st.cache_resource`` (shared, read-only objects). Functions
marked ``TODO adapter`` stand in for a package function that has not landed yet.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import polars as pl
import streamlit as st

from app_pages.cli import WORLD_ENV
from app_pages.report import audit_html
from privacy.accounting import DpEvent, zcdp_rho_for_epsilon
from privacy.audit import VerifyReport, export_csv, export_json, verify_ledger
from privacy.budget import LEDGER_FILE, BudgetCheck, BudgetState, PrivacyBudget
from privacy.ledger import Ledger
from privacy.preview import QueryPlan, noise_distribution, preview
from privacy.release import Release
from retail.load import is_merchant_folder
from retail.merchant import read_merchant_info, read_world
from retail.schema import TABLE_FILES
from twins.release import CAMPAIGN_SHARE, release_owner, write_release
from twins.schema import SCHEMA, structural_constants
from twins.workload import Workload, default_workload
from twinsim.errors import DataValidationError, TwinsimError

__all__ = [
    "AUDIT_FORMATS",
    "WORLD_ENV",
    "audit_export",
    "budget_state",
    "consent_coverage",
    "default_world",
    "expected_abs_error",
    "explain",
    "format_value",
    "has_ledger",
    "ledger_table",
    "make_twin_release",
    "merchant_folder_problem",
    "merchants",
    "owners_overview",
    "planned_workload",
    "preview_release",
    "release_detail",
    "release_measurements",
    "release_path",
    "releases",
    "verify_chain",
    "world_problem",
]

_DEFAULT_WORLD = "data/demo"


def default_world() -> Path:
    """The world folder given by ``twinsim app --world`` (``TWINSIM_WORLD``), else data/demo."""
    return Path(os.environ.get(WORLD_ENV) or _DEFAULT_WORLD)


def world_problem(path: Path) -> str | None:
    """A plain-language reason why ``path`` is not a usable world, or ``None``."""
    if not path.exists():
        return (f"The world folder {path} does not exist. Create one with "
                f"`twinsim world generate --out {path} --scale small --seed 7`, or type "
                "another folder in the sidebar.")
    try:
        read_world(path)
    except DataValidationError as exc:
        return f"{path} is not a world folder: {exc}"
    return None


def explain(exc: BaseException) -> str:
    """A message for a person: our own errors already say what to do; others get a hint."""
    if isinstance(exc, TwinsimError | ValueError):
        return str(exc)
    if isinstance(exc, FileNotFoundError | PermissionError):
        return f"{exc.strerror}: {exc.filename}"
    return f"an unexpected {type(exc).__name__} happened ({exc}). Check the inputs and retry."


def format_value(value: float | None, unit: str) -> str:
    """Format a KPI value for a card: SEK amounts (compact), percentages, ratios."""
    if value is None or value != value:  # None or NaN: no estimate
        return "–"
    if unit == "SEK":
        size = abs(value)
        if size >= 1e6:
            return f"{value / 1e6:.2f} M SEK"
        if size >= 1e4:
            return f"{value / 1e3:.0f} k SEK"
        return f"{value:.0f} SEK"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.2f}×"
    return f"{value:,.0f}".replace(",", " ") if abs(value) >= 100 else f"{value:.2f}"


@st.cache_data(show_spinner=False)
def merchants(world: str) -> pl.DataFrame:
    """One row per merchant of a world: id, name, type, regions, period and folder."""
    w = read_world(world)
    rows = []
    for mid, folder in w.merchant_dirs.items():
        info = read_merchant_info(folder)
        rows.append({"merchant_id": mid, "name": info.name, "type": info.merchant_type,
                     "regions": ", ".join(info.regions), "period_start": info.period_start,
                     "period_end": info.period_end, "folder": str(folder)})
    return pl.DataFrame(rows)


def merchant_folder_problem(folder: str) -> str | None:
    """Why a user-typed merchant folder cannot be used, or ``None``."""
    if not folder or not Path(folder).is_dir():
        return f"The folder {folder!r} does not exist."
    if not is_merchant_folder(folder):
        return f"{folder} has no merchant.json; it is not a merchant folder."
    return None


# -- privacy: budgets, ledgers, releases (owner side) ------------------------------------

def _version(folder: str) -> tuple[int, ...]:
    """Changes whenever the owner's ledger or releases change: the cache key of its views."""
    base = Path(folder)
    files = [base / LEDGER_FILE, base / f"{LEDGER_FILE}-wal", *sorted(_release_dir(base).glob(
        "*.json"))]
    stats = [p.stat() if p.exists() else None for p in files]
    return tuple(x for st_ in stats for x in ((st_.st_mtime_ns, st_.st_size) if st_ else (0, 0)))


def has_ledger(folder: str) -> bool:
    return (Path(folder) / LEDGER_FILE).is_file()


def budget_state(folder: str) -> BudgetState:
    """Spent and remaining ε at δ of the owner's current period (``UnknownOwner`` if none)."""
    return _budget_state(folder, _version(folder))


@st.cache_data(show_spinner=False)
def _budget_state(folder: str, version: tuple[int, ...]) -> BudgetState:
    return PrivacyBudget.for_owner(folder).state()


def ledger_table(folder: str) -> pl.DataFrame:
    """The owner's ledger, one row per entry, newest last."""
    return _ledger_table(folder, _version(folder))


@st.cache_data(show_spinner=False)
def _ledger_table(folder: str, version: tuple[int, ...]) -> pl.DataFrame:
    rows = [{"id": e.entry_id, "period": e.period, "kind": e.kind, "requester": e.requester,
             "purpose": e.purpose, "mechanism": e.mechanism, "epsilon": e.epsilon,
             "rho": e.rho, "spent_after": e.spent_epsilon, "cap": e.cap_epsilon,
             "refers_to": e.ref_entry, "release_hash": e.release_hash,
             "created_at": e.created_at, "entry_hash": e.entry_hash}
            for e in Ledger(Path(folder) / LEDGER_FILE).entries()]
    return pl.DataFrame(rows, schema_overrides={"refers_to": pl.Int64,
                                                "release_hash": pl.String})


def verify_chain(folder: str) -> VerifyReport:
    """Recompute the hash chain and totals of the owner's ledger (never cached: an action)."""
    return verify_ledger(Path(folder) / LEDGER_FILE)


def release_detail(folder: str) -> pl.DataFrame:
    """Per released aggregate: which marginal, cells, mechanism, noise scale, expected error."""
    rows = []
    for e in Ledger(Path(folder) / LEDGER_FILE).entries():
        if e.kind != "charge":
            continue
        for q in json.loads(e.parameters).get("queries", []):
            rows.append({"charge": e.entry_id, "purpose": e.purpose,
                         "aggregate": q["name"], "attributes": " × ".join(q["attributes"]),
                         "cells": q["cells"], "mechanism": e.mechanism, "scale": q["scale"],
                         "expected_abs_error": expected_abs_error(e.mechanism, q["scale"]),
                         "loss": q["loss"]})
    return pl.DataFrame(rows, schema=_DETAIL_SCHEMA) if not rows else pl.DataFrame(rows)


_DETAIL_SCHEMA = {"charge": pl.Int64, "purpose": pl.String, "aggregate": pl.String,
                  "attributes": pl.String, "cells": pl.Int64, "mechanism": pl.String,
                  "scale": pl.Float64, "expected_abs_error": pl.Float64, "loss": pl.Float64}


def expected_abs_error(mechanism: str, scale: float) -> float:
    """Mean |noise| per cell of a measurement, from the exact discrete noise distribution."""
    if scale > 500:  # the discrete law is the continuous one here; avoid a huge support
        return scale * math.sqrt(2 / math.pi) if mechanism == "gaussian" else scale
    k, p = noise_distribution("gaussian" if mechanism == "gaussian" else "laplace", scale)
    return float(np.sum(p * np.abs(k)))


AUDIT_FORMATS = {"csv": "text/csv", "json": "application/json", "html": "text/html"}


def audit_export(folder: str, fmt: str) -> str:
    """The ledger for auditors: ``csv``, ``json`` or a printable ``html`` report."""
    path = Path(folder) / LEDGER_FILE
    if fmt == "csv":
        return export_csv(path)
    if fmt == "json":
        return export_json(path)
    if fmt == "html":
        return audit_html(json.loads(export_json(path)))
    raise ValueError(f"audit export format {fmt!r}: use csv, json or html")


def _release_dir(folder: Path) -> Path:
    """TODO adapter (release pipeline): where an owner keeps copies of what it released."""
    return folder / "releases"


def release_path(folder: str, release: Release) -> Path:
    """TODO adapter (release pipeline): the owner's copy of one release."""
    return _release_dir(Path(folder)) / f"{release.release_id}.json"


def releases(folder: str) -> list[Release]:
    """Every release the owner keeps a copy of, oldest first (content hashes checked)."""
    return _releases(folder, _version(folder))


@st.cache_data(show_spinner=False)
def _releases(folder: str, version: tuple[int, ...]) -> list[Release]:
    found = [Release.from_json(p.read_text(encoding="utf-8"))
             for p in sorted(_release_dir(Path(folder)).glob("*.json"))]
    return sorted(found, key=lambda r: r.ledger_entry_id)


def release_measurements(release: Release) -> pl.DataFrame:
    """What one release carries: each noisy aggregate, its size, mechanism and noise."""
    return pl.DataFrame([
        {"aggregate": m.name, "attributes": " × ".join(m.attributes), "cells": len(m.counts),
         "mechanism": m.mechanism, "scale": m.scale,
         "expected_abs_error": expected_abs_error(m.mechanism, m.scale),
         "rho": m.rho, "epsilon": m.epsilon, "sensitivity": m.sensitivity}
        for m in release.measurements])


def preview_release(folder: str, epsilon: float, n_customers: int,
                    ) -> tuple[BudgetCheck, pl.DataFrame]:
    """The noise of the planned twin release at ``epsilon``, spending nothing.

    The budget check is the ledger's advisory pre-check; the noise comes from
    :func:`privacy.preview.preview` over the owner's planned marginals (their share of the
    budget once past campaigns' tables take theirs), with ``n_customers`` as the planning
    assumption for relative errors.
    """
    budget = PrivacyBudget.for_owner(folder)
    rho = zcdp_rho_for_epsilon(epsilon, budget.delta)
    check = budget.precheck(DpEvent(kind="gaussian", rho=rho))
    share = 1.0 - CAMPAIGN_SHARE if _has_campaigns(folder) else 1.0
    return check, _noise_plan(budget.ledger.merchant_type, rho * share, n_customers)


def _has_campaigns(folder: str) -> bool:
    # A release spends CAMPAIGN_SHARE of its budget on past campaigns' tables, if any.
    path = Path(folder) / TABLE_FILES["campaigns"]
    return path.is_file() and pl.scan_parquet(path).select(pl.len()).collect().item() > 0


@st.cache_data(show_spinner=False)
def _noise_plan(merchant_type: str, rho: float, n_customers: int) -> pl.DataFrame:
    workload = planned_workload(merchant_type)
    cells = [math.prod(SCHEMA[a].cardinality for a in c) for c in workload.cliques]
    # Queries with the same size and weight get the same noise: preview each kind once, with
    # the total scaled so that each still receives rho * weight / sum(all weights).
    kinds = sorted(set(zip(cells, workload.weights, strict=True)))
    share = math.fsum(w for _, w in kinds) / math.fsum(workload.weights)
    plan = [QueryPlan(name=f"{c}:{w}", cells=c) for c, w in kinds]
    found = {(c, w): r for (c, w), r in zip(kinds, preview(
        plan, n_customers=n_customers, rho=rho * share, weights=[w for _, w in kinds]),
        strict=True)}
    rows = [{**found[(c, w)].to_dict(), "name": " × ".join(clique)}
            for clique, c, w in zip(workload.cliques, cells, workload.weights, strict=True)]
    return pl.DataFrame(rows)


def planned_workload(merchant_type: str) -> Workload:
    """The marginals a twin release of this owner measures (as :func:`twins.owner_queries`)."""
    return default_workload(SCHEMA, constants=structural_constants(merchant_type))


def consent_coverage(folder: str) -> dict[str, float]:
    """TODO adapter (retail): share of the owner's customers consenting, per purpose."""
    path = Path(folder) / TABLE_FILES["customers"]
    row = (pl.scan_parquet(path)
           .select(pl.len().alias("customers"),
                   pl.col("consent_analytics").mean().alias("analytics"),
                   pl.col("consent_partner").mean().alias("partner"))
           .collect().row(0, named=True))
    return {k: float(v or 0) for k, v in row.items()}


def owners_overview(world: str) -> pl.DataFrame:
    """Per owner: ledger or not, budget spent/remaining, releases made, consent coverage."""
    rows = []
    for m in merchants(world).iter_rows(named=True):
        folder = m["folder"]
        row: dict[str, object] = {"owner": m["merchant_id"], "type": m["type"]}
        if has_ledger(folder):
            s = budget_state(folder)
            row.update(period=s.period, spent_epsilon=s.spent_epsilon,
                       remaining_epsilon=s.remaining_epsilon, cap_epsilon=s.cap_epsilon,
                       delta=s.delta, releases=int((ledger_table(folder)["kind"]
                                                    == "released").sum()))
        if (Path(folder) / TABLE_FILES["customers"]).is_file():
            c = consent_coverage(folder)
            row.update(customers=int(c["customers"]), consent_analytics=c["analytics"],
                       consent_partner=c["partner"])
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def make_twin_release(folder: str, epsilon: float, *, requester: str = "twinsim app") -> Release:
    """Release the owner's twin marginals and campaign tables (:func:`twins.release_owner`).

    The ledger is charged before any noise is drawn; an owner without a ledger gets one with
    the default cap (ε = 2 per year at δ = 1e-8), as ``twinsim release --init-ledger`` does.
    A copy of what left is kept in the owner's folder for the Data owners page.
    """
    if not has_ledger(folder):
        PrivacyBudget.init_owner(folder, period=str(read_merchant_info(folder).period_end.year))
    release = release_owner(folder, epsilon=epsilon, requester=requester,
                            purpose="twin synthesis")
    path = release_path(folder, release)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_release(release, path)
    return release
