"""Overview: the world in use and its merchants."""

from __future__ import annotations

import streamlit as st

from app_pages import services
from app_pages.ui import guard, require_world

st.title("twinsim")
st.write("Trial loyalty offers on digital twins built from differentially-private releases. "
         "Raw customer data never leaves a merchant; only noisy aggregates do.")

world = require_world()
if world is not None:
    with guard("read the world"):
        table = services.merchants(str(world))
        st.subheader(f"Merchants in {world}")
        st.dataframe(table.drop("folder"), hide_index=True, width="stretch")
        st.page_link("app_pages/offer_lab.py", label="Trial an offer in the Offer Lab",
                     icon=":material/science:")
        st.page_link("app_pages/privacy.py", label="Review privacy budgets",
                     icon=":material/shield_lock:")
