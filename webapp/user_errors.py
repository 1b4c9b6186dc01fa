"""How a page shows a student's mistake (a cnnkit.errors.UserError): one sentence at once (`show_error`), or,
for a mistake made in a button's callback, once by the page's next run (`flash_error`, `show_flash_error`)."""

from __future__ import annotations

import streamlit as st

from cnnkit.errors import UserError
from cnnkit.plain_text import inert_message


def show_error(err: Exception) -> None:
    """A user's mistake as one sentence; anything else still raises (it is a bug)."""
    if isinstance(err, UserError):
        st.error(inert_message(err), icon=":material/error:")
    else:
        raise err


def flash_error(scope: str, message: str) -> None:
    """An error caused by an action (a callback); shown once, by the next run of the page, then gone."""
    st.session_state[f"_error.{scope}"] = message


def show_flash_error(scope: str) -> None:
    message = st.session_state.pop(f"_error.{scope}", None)
    if message:
        st.error(inert_message(message), icon=":material/error:")
