"""Input forms shared by Offer Lab and Simulation Studio: who you are, whom you reach, and
the offer. They only collect values; trials.py turns them into package objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import streamlit as st

from app_pages import services, trials
from app_pages.templates import TEMPLATES, Field
from app_pages.ui import guard
from retail.schema import MERCHANT_TYPES, TIERS, region_names
from twins.schema import LIFE_TAGS

__all__ = ["TrialSettings", "merchant_picker", "offer_form", "population_picker",
           "trial_settings"]


class TrialSettings(TypedDict):
    days: int
    replications: int
    seed: int


def merchant_picker(world: Path, *, key: str) -> str | None:
    """Who you are: a demo merchant of the world or your own merchant folder."""
    table = services.merchants(str(world))
    own = "My own folder…"
    labels = {r["folder"]: f"{r['name']} ({r['type']})" for r in table.iter_rows(named=True)}
    choice = st.selectbox("Who are you?", [*labels, own], key=f"{key}_merchant",
                          format_func=lambda f: labels.get(f, own),
                          on_change=_forget, args=(f"{key}_source",))
    if choice != own:
        return str(choice)
    folder = st.text_input("Your merchant folder", key=f"{key}_folder")
    problem = services.merchant_folder_problem(folder)
    if problem:
        st.info(problem)
        return None
    return folder


def _forget(widget_key: str) -> None:
    # Another merchant: let the population source start again from its own default.
    st.session_state.pop(widget_key, None)


def population_picker(world: Path, merchant: str, *, key: str) -> trials.Population | None:
    """Whom to reach: own twins, a cohort of other merchants', or the demo personas."""
    sources = list(trials.SOURCES)
    start = "own" if trials.has_twin_release(merchant) else "demo"
    source = st.radio("Population", sources, format_func=trials.SOURCES.get,
                      key=f"{key}_source", horizontal=True, index=sources.index(start))
    types: list[str] = []
    if source == "cohort":
        types = st.multiselect("Merchant types", list(MERCHANT_TYPES), key=f"{key}_types",
                               format_func=lambda t: MERCHANT_TYPES[t].label,
                               placeholder="all types")
    c1, c2, c3 = st.columns(3)
    regions = c1.multiselect("Regions", region_names(), key=f"{key}_regions",
                             placeholder="all regions")
    life = c2.multiselect("Life situations", LIFE_TAGS, key=f"{key}_life",
                          placeholder="anyone")
    n = c3.number_input("Twins to simulate", min_value=100, max_value=200_000, value=5000,
                        step=1000, key=f"{key}_n")
    with guard("define the population"):
        pop = trials.Population(source=source, merchant=merchant, world=str(world),
                                merchant_types=tuple(types), regions=tuple(regions),
                                life=tuple(life), n_twins=int(n))
        sizes = trials.cohort_size(pop)
        total = sum(sizes.values())
        st.metric("Estimated cohort size (DP)", f"{total:,.0f}".replace(",", " "),
                  help="Estimated from the owners' noisy releases; "
                       + ", ".join(f"{o}: {s:,.0f}" for o, s in sizes.items()))
        if total < trials.MIN_COHORT:
            st.warning(f"This cohort is too small to simulate (below {trials.MIN_COHORT}). "
                       "Widen the filters.")
            return None
        return pop
    return None


def _widget(f: Field, merchant_type: str, key: str) -> Any:
    k = f"{key}_{f.name}"
    if f.kind == "number":
        return st.number_input(f.label, min_value=float(f.low), max_value=float(f.high),
                               value=float(f.default or f.low), step=float(f.step), key=k,
                               help=f.help or None)
    if f.kind == "categories":
        return st.multiselect(f.label, MERCHANT_TYPES[merchant_type].categories, key=k)
    if f.kind == "tiers":
        return st.multiselect(f.label, TIERS, key=k)
    if f.kind == "region":
        return st.selectbox(f.label, [None, *region_names()], key=k, help=f.help or None,
                            format_func=lambda r: "anywhere" if r is None else r)
    if f.kind == "flag":
        return st.checkbox(f.label, value=bool(f.default), key=k)
    return st.text_input(f.label, value=str(f.default or ""), key=k)


def offer_form(merchant_type: str, *, key: str) -> dict[str, Any]:
    """An offer from a template: kind, name, days, start day and the template's fields."""
    kind = st.selectbox("Template", list(TEMPLATES), key=f"{key}_kind",
                        format_func=lambda k: TEMPLATES[k].label)
    template = TEMPLATES[kind]
    st.caption(template.description)
    name = st.text_input("Offer name", value=f"{template.label} offer", key=f"{key}_name")
    c1, c2 = st.columns(2)
    days = c1.number_input("Days the offer runs", 1, 365, 30, key=f"{key}_days")
    start = c2.number_input("Starts on day", 0, 364, 0, key=f"{key}_start")
    values = {f.name: _widget(f, merchant_type, f"{key}_{kind}") for f in template.fields}
    return {"kind": kind, "name": name, "days": int(days), "start_day": int(start),
            "values": values}


def trial_settings(*, key: str, days: int = 90, replications: int = 3) -> TrialSettings:
    """Horizon, replications and seed (in an expander: most merchants keep the defaults)."""
    with st.expander("Simulation settings"):
        c1, c2, c3 = st.columns(3)
        return TrialSettings(
            days=int(c1.number_input("Days simulated", 7, 730, days, key=f"{key}_h")),
            replications=int(c2.number_input("Replications", 2, 100, replications,
                                             key=f"{key}_reps")),
            seed=int(c3.number_input("Seed", 0, 2**31 - 1, 7, key=f"{key}_seed")))
