"""Values a page owns in st.session_state, and the widgets that edit them: a value survives a visit to another
page (Streamlit forgets a keyed widget's value when a run does not draw it), so the value lives under its
own key and the widget under `_w.<key>` (`bind`)."""

from __future__ import annotations

import streamlit as st


def owned(key: str, default=None):
    """A page-owned value in st.session_state, set to `default` the first time it is read."""
    return st.session_state.setdefault(key, default)


def owned_choice(key: str, options, default):
    """A page-owned value that must be one of `options`: set to `default` the first time, and again whenever it
    is not among them (a class of the dataset or model used before)."""
    if owned(key, default) not in options:
        st.session_state[key] = default
    return st.session_state[key]


def bind(key: str, on_change=None, keep: bool = False) -> dict:
    """Widget arguments that make a widget edit the page-owned value `key` (which must exist).

    Streamlit forgets a keyed widget's value when a run does not draw it (another page was
    shown), so the value lives under `key` and the widget under its own key, seeded from
    the value on every run; its change is copied back before the page runs again. `keep`: a
    segmented control's option pressed again is unselected (None); the value stays as it was, so
    what it shows does not vanish.
    """
    ss = st.session_state
    wkey = f"_w.{key}"
    ss[wkey] = ss[key]

    def copy_back() -> None:
        if keep and ss[wkey] is None:
            return   # the next run selects the option again
        ss[key] = ss[wkey]
        if on_change is not None:
            on_change()

    return {"key": wkey, "on_change": copy_back}
