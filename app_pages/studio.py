"""Simulation Studio: scenarios, sweeps (ROI heat map), forecasts and reproducible exports."""

from __future__ import annotations

import streamlit as st

from app_pages import trials
from app_pages.forms import merchant_picker, offer_form, population_picker, trial_settings
from app_pages.ui import forecast_chart, guard, heatmap, kpi_cards, require_world

st.title("Simulation Studio")
st.caption("For analysts: sweep offers over cohorts, forecast business as usual, and export "
           "the full configuration to reproduce a run from the CLI or a notebook.")

world = require_world()
merchant = pop = None
if world:
    c1, c2 = st.columns([1, 2])
    with c1:
        merchant = merchant_picker(world, key="studio")
    if merchant:
        with c2:
            pop = population_picker(world, merchant, key="studio")
if pop:
    with st.expander("Base offer", expanded=True):
        spec = offer_form(pop.merchant_type, key="studio")
    settings = trial_settings(key="studio", replications=3)
    sweep_tab, forecast_tab, export_tab = st.tabs(["Sweep", "Forecast", "Export"])

    with sweep_tab:
        discounts = st.multiselect("Discounts (%)", [5, 10, 15, 20, 25, 30, 40, 50],
                                   default=[10, 20, 30], key="studio_discounts")
        cohorts = st.multiselect("Cohorts targeted (life situation)",
                                 trials.SWEEP_COHORTS, default=["everyone", "pet"],
                                 key="studio_cohorts")
        if st.button("Run sweep", type="primary", key="studio_sweep"):
            with guard("run the sweep"):
                base = trials.build_offer(spec["kind"], spec["values"], name=spec["name"],
                                          days=spec["days"], start_day=spec["start_day"],
                                          merchant_type=pop.merchant_type)
                bar = st.progress(0.0, text="Sweeping…")
                grid = trials.sweep(pop, base, discounts=[float(d) for d in discounts],
                                    cohorts=trials.sweep_cohorts(cohorts),
                                    progress=lambda d, t: bar.progress(d / t, f"{d}/{t} runs"),
                                    **settings)
                bar.empty()
                st.session_state["studio_grid"] = grid
        shown = st.session_state.get("studio_grid")
        if shown is not None:
            st.altair_chart(heatmap(shown, "discount", "cohort", "roi",
                                    "ROI over discount × cohort"), width="stretch")
            st.dataframe(shown, hide_index=True, width="stretch")

    with forecast_tab:
        if st.button("Forecast business as usual", key="studio_forecast"):
            with guard("forecast"), st.spinner("Simulating futures without an offer…"):
                st.session_state["studio_fc"] = trials.run_forecast(pop, **settings)
        fc = st.session_state.get("studio_fc")
        if fc is not None:
            kpi_cards(trials.forecast_table(fc))
            st.altair_chart(forecast_chart(fc.daily), width="stretch")

    with export_tab:
        with guard("prepare the export"):
            base = trials.build_offer(spec["kind"], spec["values"], name=spec["name"],
                                      days=spec["days"], start_day=spec["start_day"],
                                      merchant_type=pop.merchant_type)
            config = trials.config_json(pop, base, **settings)
            st.markdown("**Reproduce from the CLI** with the two files below:")
            st.code(trials.cli_command(pop, base, **settings), language="bash")
            c1, c2, c3 = st.columns(3)
            c1.download_button("offer.json", base.to_json(), file_name="offer.json",
                               mime="application/json", key="studio_offer",
                               on_click="ignore")
            c2.download_button("twins.parquet", trials.twins_parquet(pop, settings["seed"]),
                               file_name="twins.parquet", key="studio_twins",
                               on_click="ignore")
            c3.download_button("Full configuration (JSON)", config,
                               file_name="scenario.json", mime="application/json",
                               key="studio_config", on_click="ignore")
            with st.expander("Configuration"):
                st.code(config, language="json")
            if st.button("Run this scenario", key="studio_run"):
                with st.spinner("Running…"):
                    st.session_state["studio_result"] = trials.run_trial(pop, base,
                                                                         **settings)
            result = st.session_state.get("studio_result")
            if result is not None:
                kpi_cards(trials.kpi_table(result))
                cols = st.columns(3)
                for col, (fmt, mime) in zip(cols, trials.EXPORTS.items(), strict=True):
                    col.download_button(f"Results {fmt.upper()}",
                                        trials.export_bytes(result, fmt, config),
                                        file_name=f"results.{fmt}", mime=mime,
                                        key=f"studio_dl_{fmt}", on_click="ignore")
