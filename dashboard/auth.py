"""Optional password gate: on when ``[dashboard] password_hash`` is set."""

from __future__ import annotations

import streamlit as st

from wattledger.dashboard.passwords import verify_password

_OK = "auth.ok"


def require_password(password_hash: str | None) -> None:
    """Stop the script with a sign-in form unless no password is configured or it was given."""
    if not password_hash:
        return
    if st.session_state.get(_OK):
        if st.sidebar.button("Sign out", key="auth.sign_out"):
            st.session_state[_OK] = False
            st.rerun()
        return
    st.title("wattledger")
    with st.form("auth.form"):
        password = st.text_input("Password", type="password", key="auth.password")
        submitted = st.form_submit_button("Sign in", key="auth.submit")
    if submitted:
        if verify_password(password, password_hash):
            st.session_state[_OK] = True
            st.rerun()
        st.error(
            "Wrong password. Ask whoever runs this dashboard, or set a new one with "
            "`wattledger dashboard hash-password`."
        )
    st.stop()
