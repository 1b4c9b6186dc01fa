"""The lecturer's side of a class: the lecturer key (environment or st.secrets), whether this browser was
unlocked with it, and the class book (cnnkit.classroom). The limits a Start meets: cnnkit.jobs.start.class_limits."""

from __future__ import annotations

import streamlit as st

from cnnkit import settings
from webapp.browser_identity import owner_id

LECTURER_KEY_NAME = "CNNKIT_LECTURER_KEY"


def lecturer_key() -> str | None:
    """The lecturer key from the environment or st.secrets; None when neither sets one."""
    key = settings.get("lecturer_key")
    if key:
        return key
    try:
        key = str(st.secrets.get(LECTURER_KEY_NAME, "") or "").strip()
    except FileNotFoundError:  # no secrets file, or one that cannot be parsed: no key from there
        return None
    return key or None


_secrets_adopted = False


def adopt_secrets() -> None:
    """Once per process, before any setting is used: the `CNNKIT_*` entries of st.secrets become settings
    (Community Cloud has no environment of its own to set; its *Secrets* box is where a lecturer types them)."""
    global _secrets_adopted
    if _secrets_adopted:
        return
    _secrets_adopted = True
    try:
        values = st.secrets.to_dict()
    except Exception:  # no secrets file, or one that cannot be parsed: nothing to adopt (Streamlit says why)
        return
    settings.adopt(values)


def class_book():
    from cnnkit import classroom

    return classroom.book()


def is_lecturer() -> bool:
    """True when this browser was unlocked with the lecturer key (and the key has not changed since)."""
    return class_book().is_lecturer(owner_id(), lecturer_key())


# --- the class challenge ------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _challenge_scorer():
    from cnnkit import challenge, challenge_scoring
    from webapp.dataset_cache import catalogue_dataset

    # Started once per process; after a restart the first page run starts it and it catches up on every run
    # that no training worker scored.
    return challenge_scoring.Scorer(challenge.ChallengeStore(), catalogue_dataset).start()


def challenge_scorer():
    """The process's scoring thread (cnnkit.challenge_scoring.Scorer), running; pages only poke it and read scores."""
    return _challenge_scorer().start()


def current_challenge():
    """The open class challenge (cnnkit.challenge.Challenge) or None; keeps the scoring thread running."""
    return challenge_scorer().store.current()


def challenge_store():
    """Where the challenge, its hidden file and its scores live (cnnkit.challenge.ChallengeStore)."""
    return challenge_scorer().store
