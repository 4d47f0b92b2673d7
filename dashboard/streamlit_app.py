"""The wattledger dashboard: router only (page config, navigation, shared sidebar).

Run with ``wattledger dashboard``; pages live in ``app_pages/``.
"""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard import auth, data, filters, ui
from wattledger.errors import WattledgerError

# An emoji icon is drawn by the browser; a :material: icon would be fetched from Google.
st.set_page_config(page_title="wattledger", page_icon="⚡", layout="wide")

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page(
        "app_pages/vendors.py",
        title="Vendors & hardware",
        icon=":material/memory:",
        url_path="vendors",
    ),
    st.Page(
        "app_pages/workloads.py", title="Workloads", icon=":material/speed:", url_path="workloads"
    ),
    st.Page(
        "app_pages/recommendations.py",
        title="Recommendations",
        icon=":material/savings:",
        url_path="recommendations",
    ),
    st.Page("app_pages/fleet.py", title="Fleet", icon=":material/dns:", url_path="fleet"),
    st.Page("app_pages/reports.py", title="Reports", icon=":material/mail:", url_path="reports"),
]

try:
    settings = data.settings()
except WattledgerError as e:  # a bad config file or variable: say which and stop
    ui.error_state(e)
    st.stop()
auth.require_password(settings.dashboard)
page = st.navigation(PAGES)
source = data.source()
try:
    if source.url is not None:
        filters.sidebar()
    ui.begin_page()
    page.run()
    ui.downloads(page.url_path or "overview")
except WattledgerError as e:  # e.g. PostgreSQL down: explain instead of a traceback
    ui.error_state(e)
ui.footer(source)
