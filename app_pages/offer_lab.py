"""Offer Lab: a merchant trials an offer on twins and sees what it would do, with CIs."""

from __future__ import annotations

import streamlit as st

from app_pages import trials
from app_pages.forms import merchant_picker, offer_form, population_picker, trial_settings
from app_pages.ui import daily_chart, guard, kpi_cards, require_world, segment_chart

MAX_COMPARE = 3
SEGMENT_COLUMNS = {
    "reach": st.column_config.NumberColumn("reach", format="%d"),
    "redemption_rate": st.column_config.NumberColumn("redemption", format="percent"),
    "incremental_revenue": st.column_config.NumberColumn("incr. revenue (SEK)",
                                                         format="compact"),
    "incremental_margin": st.column_config.NumberColumn("incr. margin (SEK)",
                                                        format="compact"),
    "roi": st.column_config.NumberColumn("ROI", format="%.2f"),
}

st.title("Offer Lab")
st.caption("Try an offer on digital twins before spending a krona: treatment versus control, "
           "with 95% confidence intervals.")

world = require_world()
merchant = pop = None
if world:
    st.subheader("1. Who are you?")
    merchant = merchant_picker(world, key="lab")
if world and merchant:
    st.subheader("2. Whom do you want to reach?")
    pop = population_picker(world, merchant, key="lab")
if pop:
    st.subheader("3. Build your offer")
    spec = offer_form(pop.merchant_type, key="lab")
    settings = trial_settings(key="lab")
    segment = st.selectbox("Results by", trials.segment_choices(pop), key="lab_segments",
                           format_func=lambda s: trials.SEGMENTS.get(s, s))
    if st.button("Run trial", type="primary", icon=":material/play_arrow:", key="lab_run"):
        with guard("run the trial"), st.status("Running the trial…") as status:
            st.write("Checking the offer")
            offer = trials.build_offer(spec["kind"], spec["values"], name=spec["name"],
                                       days=spec["days"], start_day=spec["start_day"],
                                       merchant_type=pop.merchant_type)
            st.write(f"Drawing {pop.n_twins:,} twins".replace(",", " "))
            trials.population_twins(pop, settings["seed"])
            st.write(f"Simulating {settings['replications']} × treatment and control")
            result = trials.run_trial(pop, offer, segments=segment, **settings)
            status.update(label="Trial finished", state="complete")
            done = [t for t in st.session_state.get("lab_trials", []) if t[0] != offer.name]
            st.session_state["lab_trials"] = [(offer.name, result), *done][:MAX_COMPARE]
            st.session_state["lab_config"] = trials.config_json(
                pop, offer, segments=segment, **settings)

done = st.session_state.get("lab_trials", [])
if done:
    name, result = done[0]
    st.subheader(f"Results: {name}")
    kpi_cards(trials.kpi_table(result))
    field = st.segmented_control("Daily", ["revenue", "visits", "margin", "redemptions"],
                                 default="revenue", key="lab_daily")
    st.altair_chart(daily_chart(trials.daily_table(result, field or "revenue"),
                                field or "revenue", "Treatment versus control, per day"),
                    width="stretch")
    seg = trials.segment_table(result)
    st.markdown(f"**By {trials.SEGMENTS.get(result.segment_by or '', 'segment')}**")
    c1, c2 = st.columns([3, 2])
    c1.dataframe(seg, hide_index=True, width="stretch", column_config=SEGMENT_COLUMNS)
    c2.altair_chart(segment_chart(seg), width="stretch")
    if len(done) > 1:
        st.subheader(f"Compare offers (last {len(done)})")
        st.dataframe(trials.compare_table(done), hide_index=True, width="stretch")
    cols = st.columns(4)
    for col, (fmt, mime) in zip(cols, trials.EXPORTS.items(), strict=False):
        col.download_button(f"Download {fmt.upper()}", trials.export_bytes(
            result, fmt, st.session_state.get("lab_config", "")), file_name=f"trial.{fmt}",
            mime=mime, key=f"lab_dl_{fmt}", on_click="ignore")
    if cols[3].button("Clear comparison", key="lab_clear"):
        st.session_state["lab_trials"] = []
        st.rerun()
