"""Class: the lecturer's view of the whole class, behind the lecturer key.

Jobs running and queued, every run of the class (architecture, parameters, FLOPs, epochs,
test accuracy), accuracy against parameters, sharing a run with everyone, per-student
limits, and a presentation mode for the projector. Everything shown comes from
cnnkit.classroom; who may see it is decided by lecturer.is_lecturer().
"""

import time

import pandas as pd
import streamlit as st

from cnnkit import charts, classroom, runs, settings
from cnnkit.errors import UserError
from webapp import browser_identity, drawn_collection, lecturer, training_jobs, user_errors, widget_state

JOBS_POLL_SECONDS = 3.0
IDLE_POLL_SECONDS = 15.0
PRESENTATION_ROWS = 12


def _row_words(r: classroom.RunRow) -> str:
    acc = f"{r.test_accuracy:.1%}" if r.test_accuracy is not None else "no test accuracy"
    return f"{r.student} · {r.architecture} · {r.dataset_name} · {acc}"


ss = st.session_state
book = lecturer.class_book()
key = lecturer.lecturer_key()

st.title("Class")

# --- the key --------------------------------------------------------------------------------------
if key is None:
    st.warning("This page is for the lecturer, and no lecturer key is set on this server.", icon=":material/key:")
    st.markdown(
        "To use it, choose a key and give it to the app, then open this page and type the key:\n"
        "- **On your own machine or server:** start the app with the key in the environment, "
        "`CNNKIT_LECTURER_KEY='a long phrase only you know' streamlit run app.py`.\n"
        "- **On Streamlit Community Cloud:** open the app's *Settings → Secrets* and add the line "
        "`CNNKIT_LECTURER_KEY = \"a long phrase only you know\"` (locally the same line goes in "
        "`.streamlit/secrets.toml`).\n\n"
        "Start a lecture with `CNNKIT_CLASS_MODE=1` too, so each student sees only their own runs.")
    st.stop()

if not lecturer.is_lecturer():
    st.info("This page is for the lecturer. Type the lecturer key to unlock it in this browser; the browser "
            "stays unlocked (reloads included) until you lock it or the key changes.", icon=":material/lock:")
    with st.form("unlock_form", border=False):
        typed = st.text_input("Lecturer key", type="password", key="lecturer_key_typed")
        if st.form_submit_button("Unlock", type="primary", icon=":material/lock_open:"):
            if book.unlock(browser_identity.owner_id(), typed, key):
                st.rerun()
            time.sleep(1.0)  # every wrong guess costs a second
            st.error("That is not the lecturer key. Check it with whoever started the app "
                     f"(`{lecturer.LECTURER_KEY_NAME}` in its environment or secrets).", icon=":material/error:")
    st.stop()

# --- the lecturer's view ---------------------------------------------------------------------------
top_left, top_mid, top_right = st.columns([3, 1.3, 0.7], vertical_alignment="center")
with top_left:
    if not widget_state.owned("class.presentation", False):
        st.caption("Everything your class has trained on this server. Students appear under the nickname they "
                   "chose in the sidebar, otherwise as \"student N\".")
with top_mid:
    # the page's own value: presentation mode stays on through a visit to another page
    st.toggle("Presentation mode", help="Larger type and charts for a projector.",
              **widget_state.bind("class.presentation"))
with top_right:
    if st.button("Lock", icon=":material/lock:", help="Lock this page in this browser (the key unlocks it again)."):
        book.lock(browser_identity.owner_id())
        st.rerun()

large = bool(ss["class.presentation"])
if large:
    st.html("""<style>
    .stMainBlockContainer p, .stMainBlockContainer li, .stMainBlockContainer label,
    .stMainBlockContainer td, .stMainBlockContainer th { font-size: 1.5rem !important; }
    .stMainBlockContainer h1 { font-size: 3.6rem !important; }
    .stMainBlockContainer h2, .stMainBlockContainer h3 { font-size: 2.2rem !important; }
    .stMainBlockContainer [data-testid="stMetricValue"],
    .stMainBlockContainer [data-testid="stMetricValue"] * { font-size: 3.6rem !important; line-height: 1.15; }
    .stMainBlockContainer [data-testid="stMetricLabel"] p { font-size: 1.5rem !important; }
    </style>""")

if not settings.get("class_mode"):
    st.info("Class mode is off, so every browser sees every run on this server. For a lecture, start the app "
            "with `CNNKIT_CLASS_MODE=1`: each student then sees only their own runs and the ones you share.",
            icon=":material/info:")

summary = classroom.summarize(classroom.class_runs(), training_jobs.class_jobs(), book)
a, b, c = st.columns(3)
a.metric("Students", summary.counts["students"])
b.metric("Runs", summary.counts["runs"], help=f"Not counting the {summary.counts['shared']} shared copies.")
c.metric("Best test accuracy", f"{summary.best_accuracy:.1%}" if summary.best_accuracy is not None else "—")


# --- jobs, kept live -----------------------------------------------------------------------------------
# Every fragment run costs the server a rerun (and Streamlit's Keras clean-up): poll fast only while
# something trains or waits.
@st.fragment(run_every=JOBS_POLL_SECONDS if summary.jobs else IDLE_POLL_SECONDS)
def jobs_panel() -> None:
    live = classroom.summarize([], training_jobs.class_jobs(), book)
    left, right = st.columns(2)
    left.metric("Training now", live.counts["running"])
    right.metric("Waiting", live.counts["queued"])
    if not live.jobs:
        st.caption("No job is training or waiting right now.")
        return
    st.dataframe(pd.DataFrame([{"Student": j.student, "Model": j.architecture, "Progress": j.fraction,
                                "Where": j.progress} for j in live.jobs]),
                 hide_index=True, row_height=48 if large else None,
                 column_config={"Progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=1,
                                                                            format="percent")})


# --- runs -------------------------------------------------------------------------------------------------
chart_col, jobs_col = st.columns([3, 2]) if not large else (st.container(), st.container())
with jobs_col:
    jobs_panel()
with chart_col:
    if summary.runs:
        st.plotly_chart(charts.class_scatter_figure(summary.scatter_points(), large=large), key="class_scatter")
    else:
        st.info("No runs yet. When a student's training job finishes or is stopped, its run appears here with its "
                "architecture, parameters, FLOPs, epochs and test accuracy.", icon=":material/hourglass_empty:")

if summary.runs:
    st.subheader("Every run of the class")
    table = pd.DataFrame(summary.table())
    if large:
        best = table.sort_values("Test accuracy", ascending=False, na_position="last").head(PRESENTATION_ROWS)
        best["Test accuracy"] = best["Test accuracy"].map(lambda a: f"{a:.1%}" if pd.notna(a) else "—")
        best["Parameters"] = best["Parameters"].map(lambda n: f"{n:,.0f}" if pd.notna(n) else "—")
        st.table(best[["Student", "Architecture", "Dataset", "Parameters", "Epochs", "Test accuracy"]]
                 .set_index("Student"))
        st.caption(f"The {min(PRESENTATION_ROWS, len(table))} best of {len(table)} runs; turn presentation mode "
                   "off for all of them.")
    else:
        st.dataframe(table, hide_index=True, column_config={
            "Parameters": st.column_config.NumberColumn(format="localized"),
            "FLOPs": st.column_config.NumberColumn(format="compact"),
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
            "Shared": st.column_config.CheckboxColumn("Shared")})

    # --- share with the class ------------------------------------------------------------------------------
    st.subheader("Share with the class")
    st.caption("A shared run appears for every student on the Evaluation and Draw pages (for its dataset): they "
               "can test it, read its mistakes and draw for it. The copy belongs to nobody; the student's own run "
               "stays.")
    by_id = {r.id: r for r in summary.runs}
    own = [r for r in summary.runs if not r.shared]
    shared = [r for r in summary.runs if r.shared]
    left, right = st.columns(2)
    with left:
        if own:
            pick = st.selectbox("Run to share", [r.id for r in own], key="class_share_pick",
                                format_func=lambda i: _row_words(by_id[i]) if i in by_id else i)
            if st.button("Share with the class", icon=":material/share:", type="primary"):
                try:
                    copy = runs.share_run(runs.load_run(by_id[pick].path), shared_by=by_id[pick].student)
                except UserError as err:
                    user_errors.show_error(err)
                else:
                    st.toast(f"Shared: every student now sees {copy.title or copy.id}.")
                    st.rerun()
        else:
            st.caption("Only shared runs so far.")
    with right:
        if shared:
            back = st.selectbox("Shared run to take back", [r.id for r in shared], key="class_unshare_pick",
                                format_func=lambda i: _row_words(by_id[i]) if i in by_id else i)
            if st.button("Take back", icon=":material/undo:"):
                try:
                    runs.unshare_run(runs.load_run(by_id[back].path))
                except UserError as err:
                    user_errors.show_error(err)
                else:
                    st.rerun()
        else:
            st.caption("Nothing shared yet.")

# --- per-student limits --------------------------------------------------------------------------------------
st.subheader("Per-student limits")
limits = book.limits()
source = book.limits_source()
st.caption("What one student may ask of the shared server in class mode; the Training page enforces them with a "
           "sentence. Empty = no limit. "
           + ("Set on this page." if source == "class page" else
              "Now the environment's (`CNNKIT_CLASS_MAX_EPOCHS`, `CNNKIT_CLASS_MAX_TRAIN_IMAGES`, "
              "`CNNKIT_CLASS_ONE_JOB`); what you save here is stored on the server and wins."))
with st.form("class_limits_form", border=True):
    c1, c2, c3 = st.columns(3)
    epochs_cap = c1.number_input("Epochs cap", min_value=1, max_value=1000, step=1, value=limits.max_epochs,
                                 placeholder="no limit")
    images_cap = c2.number_input("Training-image cap", min_value=10, step=500, value=limits.max_train_images,
                                 placeholder="no limit", help="A stratified subset of this many training images.")
    one_job = c3.toggle("One job at a time", value=limits.one_job_at_a_time)
    save, reset = st.columns([1, 3])
    if save.form_submit_button("Save limits", type="primary", icon=":material/save:"):
        try:
            book.set_limits(classroom.ClassLimits(max_epochs=epochs_cap, max_train_images=images_cap,
                                                  one_job_at_a_time=one_job))
        except UserError as err:
            user_errors.show_error(err)
        else:
            st.rerun()
    if reset.form_submit_button("Use the environment's limits", disabled=source != "class page"):
        book.reset_limits()
        st.rerun()
if not settings.get("class_mode"):
    st.caption("These limits apply in class mode only (`CNNKIT_CLASS_MODE=1`).")

# --- a dataset the class draws (webapp/drawn_collection.py) -------------------------------------------------
st.subheader("A dataset your class draws")
drawn_collection.lecturer_section()
