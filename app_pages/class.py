"""Class: the lecturer's view of the whole class, behind the lecturer key.

Jobs running and queued (live: within 3 s of a Start), every run of the class (architecture,
parameters, FLOPs, epochs, test accuracy), accuracy against parameters, sharing a run with
everyone, per-student limits, and a presentation mode whose first screen is what a lecturer
projects (the chart with every point named, the leaderboard). Everything shown comes from
cnnkit.classroom and cnnkit.projector; who may see it is decided by lecturer.is_lecturer().
"""

import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cnnkit import challenge, charts, classroom, datasets, projector, runs, settings
from cnnkit.errors import UserError
from cnnkit.plain_text import chart_text, inert, inert_message
from webapp import browser_identity, dataset_cache, drawn_collection, lecturer, training_jobs, user_errors, widget_state

# --- the class challenge (#21 item 4): its own section, drawn by challenge_section() --------------------------
PRESENTATION_ROWS = 12          # rows of the challenge board a projector shows
CHALLENGE_POLL_SECONDS = 3.0
SHARE_MODE, FILE_MODE = "A share of the test split", "A file I upload"


def _plain(text: object) -> str:
    """A name a student controls, as inert HTML text (cnnkit.plain_text: its tags shown, never followed)."""
    return chart_text(text)


def _leaderboard_html(board: challenge.Leaderboard) -> str:
    """The leaderboard in large type for the projector: every cell escaped."""
    head = "".join(f"<th>{h}</th>" for h in ("Rank", "Student", "Model", "Parameters", "Epochs",
                                              "Hidden accuracy"))
    rows = []
    for e in board.entries:
        params = f"{e.parameters:,}" if e.parameters is not None else "—"
        rows.append(f"<tr><td>{e.rank}</td><td>{_plain(e.student)}</td><td>{_plain(e.model)}</td>"
                    f"<td class='num'>{params}</td><td class='num'>{e.epochs if e.epochs is not None else '—'}</td>"
                    f"<td class='num'><b>{e.accuracy:.1%}</b></td></tr>")
    body = "".join(rows)
    return ("<style>.cnn-board{width:100%;border-collapse:collapse;font-size:1.9rem;line-height:1.25}"
            ".cnn-board th{text-align:left;font-size:1.3rem;opacity:.75;border-bottom:2px solid currentColor}"
            ".cnn-board td{padding:.25rem .6rem .25rem 0;border-bottom:1px solid rgba(128,128,128,.3);"
            "overflow-wrap:anywhere}.cnn-board .num{text-align:right;white-space:nowrap}"
            "@media (max-width:640px){.cnn-board{font-size:1.05rem}.cnn-board th{font-size:.85rem}}</style>"
            f"<table class='cnn-board' aria-label='Challenge leaderboard'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _open_challenge_form() -> None:
    """The lecturer opens a challenge: dataset, where the hidden set comes from, an optional end time."""
    st.caption("Every finished run of the class on the dataset is scored on a hidden test set the students' pages "
               "never show (runs that finished before the challenge opened included); the leaderboard ranks "
               "them, ties going to the smaller model.")
    with st.form("challenge_open_form", border=True):
        names = list(datasets.CATALOGUE)
        c1, c2 = st.columns(2)
        name = c1.selectbox("Dataset", names, format_func=challenge.catalogue_title, key="challenge_dataset")
        mode = c2.radio("Hidden test set", [SHARE_MODE, FILE_MODE], key="challenge_mode", horizontal=True)
        c3, c4, c5 = st.columns(3)
        share = c3.slider("Hidden share of each class", 5, 50, 20, step=5, format="%d%%", key="challenge_share",
                          help="Of the dataset's test split; the students' pages use the rest.")
        seed = c4.number_input("Seed", 0, 99_999, 2024, key="challenge_seed",
                               help="The same seed hides the same images.")
        minutes = c5.number_input("Ends after (minutes)", 0, 600, 0, key="challenge_minutes",
                                  help="0 = no end time: freeze it with the button.")
        upload = st.file_uploader("Hidden test file (.npz in Keras's layout, or a .zip of one folder per class)",
                                  type=["npz", "zip"], key="challenge_file",
                                  help="Every image in it is hidden (train and test parts together); checked "
                                       "like any dataset upload.")
        if st.form_submit_button("Open the challenge", type="primary", icon=":material/emoji_events:"):
            store = lecturer.challenge_store()
            ends = time.time() + 60 * minutes if minutes else None
            try:
                ds = dataset_cache.catalogue_dataset(name)
                if mode == FILE_MODE:
                    if upload is None:
                        raise challenge.ChallengeError("Choose the hidden test file first, or hide a share of "
                                                       "the test split.")
                    with tempfile.TemporaryDirectory() as tmp:
                        path = Path(tmp) / ("hidden" + Path(upload.name).suffix.lower())
                        path.write_bytes(upload.getvalue())
                        store.open_file(ds, path, ends_at=ends, file_name=upload.name)
                else:
                    store.open_share(ds, share / 100, seed=int(seed), ends_at=ends)
            except UserError as err:
                user_errors.show_error(err)
            else:
                lecturer.challenge_scorer().poke()
                st.rerun()


def _challenge_controls(ch: challenge.Challenge, board: challenge.Leaderboard) -> None:
    """Freeze / unfreeze, the CSV, closing."""
    store = lecturer.challenge_store()

    def change(action) -> None:   # a disk that refuses the change is a sentence (the page's note names it)
        try:
            action()
        except UserError as err:
            st.error(str(err), icon=":material/hard_drive:")
        else:
            st.rerun()

    c1, c2, c3 = st.columns(3)
    if board.frozen:
        if c1.button("Unfreeze", icon=":material/lock_open:", key="challenge_unfreeze",
                     help="Rank runs again, the ones finished since the freeze included (the end time goes)."):
            change(store.unfreeze)
    elif c1.button("Freeze now", icon=":material/ac_unit:", type="primary", key="challenge_freeze",
                   help="Runs that finish from now on are scored but not ranked."):
        change(store.freeze)
    c2.download_button("Export CSV", challenge.leaderboard_csv(board), file_name="challenge-leaderboard.csv",
                       mime="text/csv", icon=":material/download:", key="challenge_csv")
    with c3.popover("Close the challenge", icon=":material/close:"):
        st.caption("Its hidden set and scores go, and the students' pages show the whole test split again. "
                   "Export the CSV first.")
        if st.button("Close it", key="challenge_close", type="primary"):
            change(store.close)


def challenge_section(large: bool) -> None:
    """The class challenge: open one, or its live leaderboard with freeze, export and close."""
    ch = lecturer.current_challenge()
    if ch is None and large:
        return   # presentation mode projects the class's chart first; no word about a challenge not open
    st.subheader("Class challenge")
    if ch is None:
        _open_challenge_form()
        return
    widget_state.owned("class.challenge_all", False)

    @st.fragment(run_every=CHALLENGE_POLL_SECONDS)
    def board_panel() -> None:
        now = lecturer.current_challenge()
        if now is None or now.opened != ch.opened:
            st.rerun()   # closed or replaced in another tab: redraw the page
        all_runs = bool(ss.get("class.challenge_all"))
        board = challenge.leaderboard(now, lecturer.challenge_store(), book, best_only=not all_runs)
        state = ("Frozen at " + time.strftime("%H:%M", time.localtime(now.freeze_time())) if board.frozen else
                 "Ends at " + time.strftime("%H:%M", time.localtime(now.ends_at)) if now.ends_at else "Open")
        st.caption(f"{state} · {inert_message(now.describe())}")
        if not board.entries:
            st.info("No run is scored yet: each finished run appears here within seconds.",
                    icon=":material/hourglass_empty:")
        elif large:
            st.html(_leaderboard_html(_top(board, PRESENTATION_ROWS)))
        else:
            table = pd.DataFrame(board.rows())
            table["Hidden accuracy"] = table["Hidden accuracy"] * 100   # one decimal for every row: 86.0 %
            st.dataframe(table, hide_index=True, key="challenge_board", column_config={
                "Parameters": st.column_config.NumberColumn(format="localized"),
                "FLOPs": st.column_config.NumberColumn(format="compact"),
                "Hidden accuracy": st.column_config.NumberColumn(format="%.1f %%")})
        waiting = [f"{board.waiting} run{'s' if board.waiting != 1 else ''} being scored"] if board.waiting else []
        late = [f"{board.late} finished after the freeze"] if board.late else []
        if waiting or late or board.notes:
            st.caption(" · ".join(waiting + late + board.notes))
        if not large:
            _challenge_controls(now, board)

    # on the projector the board comes first; the toggle goes under it
    if not large:
        st.toggle("Every run (not only each student's best)", **widget_state.bind("class.challenge_all"))
    board_panel()
    if large:
        st.toggle("Every run (not only each student's best)", **widget_state.bind("class.challenge_all"))


def _top(board: challenge.Leaderboard, n: int) -> challenge.Leaderboard:
    return challenge.Leaderboard(entries=board.entries[:n], waiting=board.waiting, frozen=board.frozen,
                                 late=board.late, notes=board.notes)


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
            # behind the server-wide throttle of wrong keys: every session's guesses count together
            attempt = book.try_lecturer_key(browser_identity.owner_id(), typed, key)
            if attempt.unlocked:
                st.rerun()
            st.error(attempt.sentence, icon=":material/error:")
    st.stop()

# --- the lecturer's view ---------------------------------------------------------------------------
top_left, top_mid, top_right = st.columns([3, 1.3, 0.7], vertical_alignment="center")
with top_left:
    if not widget_state.owned("class.presentation", False):
        st.caption("Everything your class has trained on this server. Students appear under the nickname they "
                   "chose in the sidebar, otherwise as \"student N\".")
with top_mid:
    # the page's own value: presentation mode stays on through a visit to another page
    st.toggle("Presentation mode", help="The projector's first screen: the chart with every point named and "
              "the leaderboard, in large type.", **widget_state.bind("class.presentation"))
with top_right:
    if st.button("Lock", icon=":material/lock:", help="Lock this page in this browser (the key unlocks it again)."):
        book.lock(browser_identity.owner_id())
        st.rerun()

large = bool(ss["class.presentation"])
if large:
    st.html("""<style>
    .stMainBlockContainer { padding-top: 2.5rem !important; }
    .stMainBlockContainer h1 { font-size: 2.2rem !important; padding: 0 !important; }
    .stMainBlockContainer p, .stMainBlockContainer li, .stMainBlockContainer label,
    .stMainBlockContainer td, .stMainBlockContainer th { font-size: 1.35rem !important; }
    .stMainBlockContainer h2, .stMainBlockContainer h3 { font-size: 1.8rem !important; }
    .stMainBlockContainer [data-testid="stTable"] td, .stMainBlockContainer [data-testid="stTable"] th {
        font-size: 1.2rem !important; padding: 0.3rem 0.5rem !important; }
    </style>""")

if not settings.get("class_mode"):
    st.info("Class mode is off, so every browser sees every run on this server. For a lecture, start the app "
            "with `CNNKIT_CLASS_MODE=1`: each student then sees only their own runs and the ones you share.",
            icon=":material/info:")

for problem in training_jobs.server_problems():   # a full or read-only disk, a cluster that is away
    st.error(inert_message(problem), icon=":material/report:")

stamp = projector.runs_stamp()   # read before the listing: a run saved while the page lists them is news next poll
class_runs = classroom.class_runs()
jobs_then = training_jobs.class_jobs()
summary = classroom.summarize(class_runs, jobs_then, book)
drawn_jobs, drawn_at = {j.id for j in jobs_then}, time.monotonic()

challenge_section(large)


# --- the live part: counts and jobs -------------------------------------------------------------------
# Polled fast while anything trains or waits and slowly when idle (an idle poll reads the registry's memory and
# two folder times), so a Start shows within 3 s. The counts are counted from the same summary as the jobs listed.
# A run saved, shared or taken back (or a job ended: its run is saved) redraws the whole page (its chart and
# table), and so does the class turning busy or idle (the poll's pace) — after the counts of that poll are drawn
# from the runs listed afresh (they show at once), and at most once every REDRAW_SECONDS, so a lecture's burst of
# runs never holds the counts back behind whole-page runs.
@st.fragment(run_every=projector.poll_seconds(summary))
def live_panel() -> None:
    jobs = training_jobs.class_jobs()
    news = (projector.changed_since(stamp, drawn_jobs, projector.runs_stamp(), jobs)
            or bool(jobs) != bool(summary.jobs))
    live = classroom.summarize(classroom.class_runs() if news else class_runs, jobs, book)
    live_counts(live)
    if news and time.monotonic() - drawn_at >= projector.REDRAW_SECONDS:
        st.rerun()


def live_counts(live: classroom.ClassSummary) -> None:
    """The counts and the jobs, counted from one summary."""
    if large:
        st.markdown(f"**{inert(projector.counts_line(live))}**")
        st.markdown(inert(projector.jobs_line(live)))
        return
    cols = st.columns(5)
    cols[0].metric("Students", live.counts["students"])
    cols[1].metric("Runs", live.counts["runs"], help=f"{live.counts['shared']} of them shared with the class.")
    cols[2].metric("Best test accuracy", f"{live.best_accuracy:.1%}" if live.best_accuracy is not None else "—")
    cols[3].metric("Training now", live.counts["running"])
    cols[4].metric("Waiting", live.counts["queued"])
    if not live.jobs:
        st.caption("No job is training or waiting right now.")
        return
    st.dataframe(pd.DataFrame([{"Student": j.student, "Model": j.architecture, "Where": j.progress,
                                "Progress": j.fraction} for j in live.jobs]),
                 hide_index=True, width="stretch",
                 column_config={"Where": st.column_config.TextColumn("Where", width="medium"),
                                "Progress": st.column_config.ProgressColumn("Progress", min_value=0, max_value=1,
                                                                            format="percent")})


def projector_view() -> None:
    """Presentation mode's first screen: the chart with every point named, and the leaderboard beside it."""
    chart_col, board_col = st.columns([4, 3])
    with chart_col:
        st.plotly_chart(charts.class_scatter_figure(summary.scatter_points(), large=True, height=470),
                        key="class_scatter")
    with board_col:
        st.table(pd.DataFrame(projector.leaderboard(summary)).set_index("#"))
        n = min(projector.LEADERBOARD_ROWS, len(summary.runs))
        st.caption(f"The {n} best of {len(summary.runs)} runs by test accuracy (ties: fewer parameters first).")


def runs_view() -> None:
    """The lecturer's desk view: the chart, then every run of the class."""
    st.plotly_chart(charts.class_scatter_figure(summary.scatter_points()), key="class_scatter")
    st.subheader("Every run of the class")
    st.dataframe(pd.DataFrame(summary.table()), hide_index=True, column_config={
        "Parameters": st.column_config.NumberColumn(format="localized"),
        "FLOPs": st.column_config.NumberColumn(format="compact"),
        "Test accuracy": st.column_config.NumberColumn(format="percent"),
        "Shared": st.column_config.CheckboxColumn("Shared")})


if large:
    with top_left:   # presentation mode: the live lines where the page's caption was, so the chart is on screen
        live_panel()
else:
    live_panel()
if not summary.runs:
    st.info("No runs yet. When a student's training job finishes or is stopped, its run appears here with its "
            "architecture, parameters, FLOPs, epochs and test accuracy.", icon=":material/hourglass_empty:")
elif large:
    projector_view()
else:
    runs_view()

if summary.runs:
    # --- share with the class ------------------------------------------------------------------------------
    st.subheader("Share with the class")
    st.caption("A shared run appears for every student on the Evaluation and Draw pages (for its dataset): they "
               "can test it, read its mistakes and draw for it. The copy belongs to nobody; the student's own run "
               "stays.")
    by_id = {r.id: r for r in summary.runs}
    own = [r for r in summary.runs if not r.shared]
    shared = [r for r in summary.runs if r.shared]   # a shared run is one row with its copy (shared_copy)
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
                    st.toast(f"Shared: every student now sees {inert(copy.title or copy.id)}.")
                    st.rerun()
        else:
            st.caption("Only shared runs so far.")
    with right:
        if shared:
            back = st.selectbox("Shared run to take back", [r.id for r in shared], key="class_unshare_pick",
                                format_func=lambda i: _row_words(by_id[i]) if i in by_id else i)
            if st.button("Take back", icon=":material/undo:"):
                try:
                    runs.unshare_run(runs.load_run(by_id[back].shared_copy or by_id[back].path))
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
