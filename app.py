"""twinsim Streamlit app: the entry point only wires the navigation; pages live in app_pages/.

Run with ``twinsim app --world DIR`` (or ``streamlit run app.py`` with ``TWINSIM_WORLD`` set).
"""

from __future__ import annotations

import streamlit as st

from app_pages.ui import world_sidebar

st.set_page_config(page_title="twinsim", page_icon=":material/shopping_cart:", layout="wide")

PAGES = {
    "Merchants": [
        st.Page("app_pages/home.py", title="Overview", icon=":material/home:", default=True),
        st.Page("app_pages/offer_lab.py", title="Offer Lab", icon=":material/science:",
                url_path="offer_lab"),
    ],
    "Analysts": [
        st.Page("app_pages/studio.py", title="Simulation Studio", icon=":material/monitoring:",
                url_path="studio"),
    ],
    "Compliance": [
        st.Page("app_pages/privacy.py", title="Privacy & Compliance",
                icon=":material/shield_lock:", url_path="privacy"),
        st.Page("app_pages/owners.py", title="Data owners", icon=":material/storefront:",
                url_path="owners"),
    ],
}

world_sidebar()
st.navigation(PAGES).run()
