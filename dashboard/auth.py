"""Optional sign-in: one password (``[dashboard] password_hash``) or named users
(``[dashboard.users.<name>]``), each optionally bound to one tenant.
"""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard.passwords import verify_password
from wattledger.dashboard.settings import DashboardSettings

_OK = "auth.ok"
#: Session key holding the signed-in user's name (users mode).
USER = "auth.user"


def _sign_out() -> None:
    if st.sidebar.button("Sign out", key="auth.sign_out"):
        st.session_state[_OK] = False
        st.session_state.pop(USER, None)
        st.rerun()


def require_password(settings: DashboardSettings) -> None:
    """Stop the script with a sign-in form unless no sign-in is configured or it was given."""
    users = settings.users
    if not users and not settings.password_hash:
        return
    if st.session_state.get(_OK) and (not users or st.session_state.get(USER) in users):
        _sign_out()
        return
    st.title("wattledger")
    with st.form("auth.form"):
        name = st.text_input("User name", key="auth.name") if users else ""
        password = st.text_input("Password", type="password", key="auth.password")
        submitted = st.form_submit_button("Sign in", key="auth.submit")
    if submitted:
        if users:
            user = users.get(name)
            # Unknown users cost a hash too, so timing does not tell which names exist.
            stored = user.password_hash if user else next(iter(users.values())).password_hash
            ok = verify_password(password, stored) and user is not None
        else:
            ok = verify_password(password, settings.password_hash or "")
        if ok:
            st.session_state[_OK] = True
            if users:
                st.session_state[USER] = name
            st.rerun()
        st.error(
            "Wrong user name or password. Ask whoever runs this dashboard, or set a new "
            "password hash with `wattledger dashboard hash-password`."
            if users
            else "Wrong password. Ask whoever runs this dashboard, or set a new one with "
            "`wattledger dashboard hash-password`."
        )
    st.stop()


def bound_tenant(settings: DashboardSettings) -> str | None:
    """The one tenant this session may read, or ``None`` for all tenants.

    ``[dashboard] tenant`` binds everyone; otherwise a signed-in user's ``tenant`` binds that
    session. Read from the settings on every call, never trusted from the browser.
    """
    if settings.tenant is not None:
        return settings.tenant
    user = settings.users.get(st.session_state.get(USER, ""))
    return user.tenant if user is not None else None
