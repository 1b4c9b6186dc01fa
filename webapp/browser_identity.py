"""Who this browser is: the owner id kept in a first-party cookie (cnnkit.identity), read from the websocket's
request or written by a tiny Components v2 snippet. Pages learn the student's id only through `owner_id()`."""

from __future__ import annotations

import streamlit as st

from cnnkit import identity

# The id lives in a first-party cookie. Streamlit only sees cookies that came with the
# websocket's HTTP request (st.context.cookies), so on a browser's first visit there is none
# yet: the session makes an id, keeps it in st.session_state for this visit, and a tiny
# Components v2 snippet writes it into the cookie; the next visit (a reload, a new tab) sends it.
# If the browser already holds an id the websocket did not carry (another tab set it a moment
# ago), the snippet hands that one back and this session adopts it.
_COOKIE_JS = """
export default function (component) {
  const { data, setStateValue } = component;
  const found = document.cookie.match(new RegExp("(?:^|; )" + data.name + "=([A-Za-z0-9_-]{32})(?:;|$)"));
  if (found) {
    if (found[1] !== data.id) setStateValue("held", found[1]);
    return;
  }
  document.cookie = data.name + "=" + data.id + "; Path=/; Max-Age=" + data.max_age + "; SameSite=Lax"
    + (window.location.protocol === "https:" ? "; Secure" : "");
}
"""
_cookie_writer = st.components.v2.component("cnnlab_identity_cookie", js=_COOKIE_JS)


def _adopt_held_id() -> None:
    held = st.session_state.get("_identity_cookie", {}).get("held")
    if identity.is_owner_id(held):
        st.session_state.owner_id = held


def identify() -> None:
    """Settle this session's owner id: the cookie's, else the one made for this visit (and written to the cookie)."""
    ss = st.session_state
    sent = st.context.cookies.get(identity.COOKIE_NAME)
    if identity.is_owner_id(sent):
        ss.owner_id = sent
        return
    if not identity.is_owner_id(ss.get("owner_id")):
        ss.owner_id = identity.new_owner_id()
    _cookie_writer(key="_identity_cookie", data={"name": identity.COOKIE_NAME, "id": ss.owner_id,
                                                 "max_age": identity.COOKIE_MAX_AGE},
                   on_held_change=_adopt_held_id, height=0)


def owner_id() -> str:
    """This browser's identity (see cnnkit.identity); the only way pages learn who the student is."""
    if not identity.is_owner_id(st.session_state.get("owner_id")):
        identify()
    return st.session_state.owner_id
