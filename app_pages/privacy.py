"""Privacy & Compliance: per owner, the budget, the ledger, its verification, each release's
noise, a preview of a planned release, and the audit export."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages import services
from app_pages.ui import budget_gauge, guard, owner_picker, require_world

st.title("Privacy & Compliance")
st.caption("Each merchant (data owner) has a privacy budget. Every release is charged in the "
           "owner's hash-chained ledger before anything leaves.")

world = require_world()
folder = owner_picker(world, key="privacy_owner") if world else None
if folder and not services.has_ledger(folder):
    st.info("This owner has released nothing yet: it has no privacy ledger.")
elif folder:
    with guard("read the privacy budget"):
        state = services.budget_state(folder)
        budget_gauge(state)

    st.subheader("Ledger")
    with guard("read the ledger"):
        st.dataframe(services.ledger_table(folder), hide_index=True, width="stretch")
    if st.button("Verify chain", icon=":material/verified:", key="verify"):
        with guard("verify the ledger"):
            report = services.verify_chain(folder)
            if report.ok:
                st.success(f"Chain verified: {report.n_entries} entries, every hash and the "
                           f"totals recompute (spent ε = {report.spent_epsilon:.4g}).")
            else:
                st.error(f"Chain broken at entry {report.first_broken_entry}: "
                         + "; ".join(report.problems))

    st.subheader("Releases: what was measured and how noisy")
    with guard("read the releases"):
        detail = services.release_detail(folder)
        if detail.is_empty():
            st.caption("No release has been charged yet.")
        else:
            st.dataframe(detail, hide_index=True, width="stretch", column_config={
                "scale": st.column_config.NumberColumn("noise scale", format="%.2f"),
                "expected_abs_error": st.column_config.NumberColumn(
                    "expected |error| per cell", format="%.2f")})

    st.subheader("Preview a planned release (spends nothing)")
    c1, c2 = st.columns(2)
    eps = c1.number_input("ε to spend on a twin release", min_value=0.01, max_value=10.0,
                          value=0.5, step=0.1, key="preview_eps")
    n_plan = c2.number_input("About how many consenting customers (planning only)",
                             min_value=100, value=10_000, step=1000, key="preview_n")
    if st.button("Preview noise", key="preview"):
        with guard("preview the release"), st.spinner("Calibrating the noise…"):
            check, plan = services.preview_release(folder, float(eps), int(n_plan))
            (st.success if check.allowed else st.warning)(
                f"After this release: spent ε = {check.spent_after:.4g} of "
                f"{check.cap_epsilon:.4g}, remaining {check.remaining_after:.4g}."
                + ("" if check.allowed else " It would exceed the cap and be refused."))
            st.dataframe(plan, hide_index=True, width="stretch")

    st.subheader("Audit export")
    with guard("export the ledger"):
        cols = st.columns(3)
        for col, (fmt, mime) in zip(cols, services.AUDIT_FORMATS.items(), strict=True):
            col.download_button(f"Download {fmt.upper()}", services.audit_export(folder, fmt),
                                file_name=f"ledger_{Path(folder).name}.{fmt}", mime=mime,
                                key=f"audit_{fmt}", on_click="ignore")
