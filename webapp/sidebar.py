"""The sidebar on every page: the dataset and model at a glance, the student's training job in one live line,
and, in class mode, the student's nickname for the lecturer's Class page."""

from __future__ import annotations

import streamlit as st

from cnnkit import progress, settings
from cnnkit.challenge import visible_dataset
from cnnkit.errors import UserError
from cnnkit.plain_text import inert, inert_message
from cnnkit.spec import format_shape
from webapp import student
from webapp.browser_identity import owner_id
from webapp.lecturer import class_book, current_challenge
from webapp.training_jobs import current_job
from webapp.user_errors import show_error


def show() -> None:
    """Dataset and model at a glance, on every page."""
    # the test count a student's pages use: a class challenge's hidden images left out (this also keeps its
    # scoring thread running from the first page a browser opens)
    ds = visible_dataset(student.dataset(), current_challenge())
    with st.sidebar:
        st.markdown(f"**Dataset:** {inert(ds.title)}")
        st.caption(f"{len(ds.x_train):,} train · {len(ds.x_test):,} test · "
                   f"{format_shape(ds.image_shape)} · from {ds.source_text}")
        spec = student.current_spec()
        summary = spec.summary()
        problems = spec.validate(ds.num_classes, refuse_cost=settings.get("class_mode"))
        st.markdown(f"**Model:** {inert(spec.name or 'your model')}")
        st.caption(f"{len(spec.layers)} layers · {summary.total_params:,} parameters"
                   + (f" · {len(problems)} problem(s) to fix on the Architecture page" if problems else ""))
        job_status_line()
        if st.session_state.get("disk_notice"):   # a disk that refused this student's choices (webapp/student.py)
            st.warning(inert_message(st.session_state.disk_notice), icon=":material/hard_drive:")
    nickname_box()


def job_status_line() -> None:
    """The student's training job in one line of the sidebar, on every page, kept live while it runs."""
    job = current_job()
    if job is None:
        return
    drawn = job.state
    polling = drawn.active

    # The sidebar is drawn by the full script run; without its own poll it would show the epoch the
    # job was at when the page last ran. It looks half as often as a job panel (progress.poll_seconds).
    @st.fragment(run_every=progress.poll_seconds(drawn, slower=2) if polling else None)
    def line() -> None:
        snap = job.snapshot()
        if polling and snap.state is not drawn:
            st.rerun()  # the job just started (poll faster) or ended: redraw the page once and poll at its pace
        if snap.state.value == "queued":
            st.caption(f"**Training:** waiting, number {snap.queue_position} in line")
        elif snap.state.value == "running":
            st.caption(f"**Training:** epoch {min(snap.epoch + 1, snap.epochs)}/{snap.epochs} · "
                       f"{snap.job_fraction:.0%} done")
        elif snap.state.value == "failed" and snap.message:
            # Why, in its first sentence (a job lost to a restart says so on every page, in every tab).
            st.caption(f"**Training:** failed. {inert_message(snap.message.split('. ')[0].rstrip('.'))}.")
        else:
            st.caption(f"**Training:** {snap.state.value}")

    line()


def nickname_box() -> None:
    """In class mode, the student's optional nickname for the lecturer's Class page (sidebar)."""
    if not settings.get("class_mode"):
        return
    book = class_book()
    me = owner_id()
    name = book.nickname(me)
    with st.sidebar.popover(f"In class as: {inert(name or 'no nickname')}", icon=":material/badge:", width="stretch"):
        st.caption("Your lecturer's Class page lists your runs and jobs under this name; without one you are "
                   f"\"student {book.number(me)}\". There is no account or password: this browser remembers "
                   "you until its cookies are cleared.")
        with st.form("nickname_form", border=False):
            typed = st.text_input("Nickname", value=name, max_chars=24, placeholder="e.g. Ada L.")
            if st.form_submit_button("Save"):
                try:
                    book.set_nickname(me, typed)
                except UserError as err:
                    show_error(err)
                else:
                    st.rerun()
