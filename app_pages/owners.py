"""Data owners: what each owner released, its consent coverage, and exactly what left."""

from __future__ import annotations

import streamlit as st

from app_pages import services
from app_pages.ui import guard, owner_picker, require_world

st.title("Data owners")
st.caption("Only noisy aggregates over public attributes leave an owner: no customer id, "
           "no row. Below is every owner's account and the exact content of each release.")

if flash := st.session_state.pop("owners_flash", None):
    st.success(flash)

world = require_world()
if world:
    with guard("summarise the owners"):
        st.dataframe(services.owners_overview(str(world)), hide_index=True, width="stretch",
                     column_config={
                         "spent_epsilon": st.column_config.NumberColumn("spent ε",
                                                                        format="%.3f"),
                         "remaining_epsilon": st.column_config.NumberColumn("remaining ε",
                                                                            format="%.3f"),
                         "cap_epsilon": st.column_config.NumberColumn("cap ε", format="%.2f"),
                         "delta": st.column_config.NumberColumn("δ", format="%.0e"),
                         "consent_analytics": st.column_config.ProgressColumn(
                             "consent: analytics", format="percent", min_value=0, max_value=1),
                         "consent_partner": st.column_config.ProgressColumn(
                             "consent: partners", format="percent", min_value=0, max_value=1)})

folder = owner_picker(world, key="owners_owner") if world else None
if folder:
    with st.expander("Make a twin release (spends privacy budget)"):
        st.write("Measures this owner's consenting customers as noisy marginals over the "
                 "public attributes. The ledger is charged first; a refused charge changes "
                 "nothing.")
        eps = st.number_input("ε to spend", min_value=0.05, max_value=2.0, value=1.0,
                              step=0.05, key="owners_eps")
        if st.button("Release now", key="owners_release_now"):
            with guard("make the release"), st.status("Releasing…") as status:
                st.write("Loading and validating the merchant's data (stays here)")
                release = services.make_twin_release(folder, float(eps))
                status.update(label=f"Released {release.release_id}", state="complete")
                st.session_state["owners_flash"] = (
                    f"Released {release.release_id}: ε = {release.privacy_loss['epsilon']:.3g} "
                    "charged in the ledger before anything left.")
                st.rerun()  # redraw the overview above with the new release
    with guard("read the owner's releases"):
        found = services.releases(folder)
        if not found:
            st.info("No release copy is kept in this owner's folder yet.")
        else:
            ids = [r.release_id for r in found]
            chosen = st.selectbox("Release", ids, index=len(ids) - 1, key="owners_release")
            release = found[ids.index(chosen)]
            loss = release.privacy_loss
            st.write(f"Released {release.created_at} for period {release.period}, "
                     f"ε = {loss['epsilon']:.3g} at δ = {loss['delta']:.0e}; ledger entry "
                     f"{release.ledger_entry_id}; content hash `{release.content_hash}`.")
            st.dataframe(services.release_measurements(release), hide_index=True,
                         width="stretch")
            with st.expander("Exact content (what left the premises)"):
                st.json(release.to_json(), expanded=1)
            st.download_button("Download this release (JSON)", release.to_json(),
                               file_name=f"{release.release_id}.json", mime="application/json",
                               key="release_download", on_click="ignore")
