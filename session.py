"""What one student's browser session holds, and the process-wide shared resources.

The Streamlit side of the house: pages import this module to read the chosen
dataset, the student's model spec and their owner id. Datasets are loaded once
per process with `st.cache_resource` and shared read-only by every session.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from cnnkit import datasets, identity, settings, student_state
from cnnkit.errors import DatasetError, UserError
from cnnkit.plain_text import inert, inert_message
from cnnkit.spec import format_shape

DEFAULT_DATASET = "mnist"
JOB_POLL_SECONDS = 2.0  # how often the sidebar refreshes a running job's line


@dataclass(frozen=True)
class Stage:
    path: str
    title: str
    icon: str
    blurb: str
    lecturer: bool = False   # shown in the navigation only to a browser unlocked with the lecturer key


# The pages in lesson order. app.py registers them; the home page links to them.
STAGES: tuple[Stage, ...] = (
    Stage("app_pages/home.py", "Home", ":material/home:", "What CNN Lab teaches and where to start."),
    Stage("app_pages/data.py", "1 · Data", ":material/dataset:",
          "Load and explore the images: samples, class balance, mean images, pixel values, and the "
          "preprocessing a CNN needs (scaling, channel axis, labels, validation split)."),
    Stage("app_pages/architecture.py", "2 · Architecture", ":material/account_tree:",
          "Stack layers, watch every output shape and parameter count update as Keras would report them, "
          "start from the lessons' models, export a runnable Keras script."),
    Stage("app_pages/training.py", "3 · Training", ":material/model_training:",
          "Pick the optimizer, learning rate, batch size and epochs; watch loss fall and accuracy rise, "
          "training against validation, epoch by epoch."),
    Stage("app_pages/evaluation.py", "4 · Evaluation", ":material/analytics:",
          "Test accuracy, the classification report, the confusion matrix and the images behind each "
          "mistake; compare your runs."),
    Stage("app_pages/draw.py", "5 · Draw & predict", ":material/draw:",
          "Draw a digit and watch your own model read it: every preprocessing step, the probabilities, "
          "and what each filter sees."),
    Stage("app_pages/class.py", "Class", ":material/groups:",
          "The lecturer's view: who is training, every run of the class, accuracy against parameters, "
          "sharing a model with everyone, per-student limits.", lecturer=True),
)

_ROOT = Path(__file__).resolve().parent


def existing_stages(lecturer: bool = False) -> list[Stage]:
    """The pages that exist, in lesson order; the lecturer's pages only when asked for."""
    return [s for s in STAGES if (_ROOT / s.path).is_file() and (lecturer or not s.lecturer)]


# --- shared, process-wide ----------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _catalogue_dataset(name: str) -> datasets.Dataset:
    return datasets.load(name)


@st.cache_resource(show_spinner=False, max_entries=4)
def _uploaded_dataset(digest: str, filename: str, name: str, _data: bytes) -> datasets.Dataset:
    # Keyed by the file's digest (the bytes themselves are not hashed again on every rerun).
    suffix = Path(filename).suffix or ".bin"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(filename).stem + suffix)
        path.write_bytes(_data)
        return datasets.load_file(path, name=name)


# --- who this browser is ----------------------------------------------------------------
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


def _identity() -> None:
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


# --- this student's session ----------------------------------------------------------
def init() -> None:
    """Defaults for a new session; called by app.py on every run."""
    ss = st.session_state
    _identity()
    if "sid" in st.query_params:
        del st.query_params["sid"]  # old links carried an identity in the URL: it is ignored, and removed
    ss.setdefault("dataset_name", DEFAULT_DATASET)
    ss.setdefault("upload", None)  # (digest, filename, catalogue name) of an uploaded dataset in use
    if "restored_for" not in ss or ss.restored_for != ss.owner_id:
        _restore(ss.owner_id)


_SETTLED: set[str] = set()


def settle_imports() -> bool:
    """Hide the long-lived objects of the libraries imported so far from Python's cycle collector (gc.freeze);
    True when it froze something new. Called by app.py after every full run (cheap once done).

    Streamlit collects all garbage after every script run, fragments included, and once Keras is imported
    it also clears Keras's session, which collects again. Each full collection walks every object in the
    process: the app's libraries and the embedded Dask scheduler make that 0.1–0.9 s holding the
    interpreter lock on a 2-core server (more with TensorFlow's ~470,000 objects), and every student's
    progress panel polls once a second, so a class of thirty kept the server busy collecting. Modules,
    classes and functions live as long as the process anyway; frozen, a collection only looks at what the
    sessions made since.
    """
    mark = "keras" if "keras" in sys.modules else "app"
    if mark in _SETTLED:
        return False
    if mark == "keras":
        keep_keras_state()
    gc.collect()  # what is garbage now goes first: frozen objects are never collected
    gc.freeze()
    _SETTLED.add(mark)
    if mark == "keras":
        _SETTLED.add("app")
    return True


def keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's session after every script run, in this process only.

    Streamlit's `_clean_problem_modules` calls `keras.backend.clear_session()` after every script run of every
    student, fragments included. That replaces Keras's per-thread state objects for *all* threads, clears
    TensorFlow's kernel cache and runs a full garbage collection. The web process never trains (jobs run on
    Dask workers), but it evaluates and predicts: a clear in the middle of another student's evaluation
    could break it ("Only input tensors may be passed as positional arguments" was seen once), and every
    prediction after a clear rebuilt its kernels. Calls from anywhere else still clear as before.
    """
    backend = getattr(sys.modules.get("keras"), "backend", None)
    original = getattr(backend, "clear_session", None)
    if original is None or getattr(original, "kept_for_streamlit", False):
        return

    @functools.wraps(original)   # keeps what other wrappers marked on it (cnnkit.keras_guard's cnnkit_guarded)
    def clear_session(*args, **kwargs):
        caller = sys._getframe(1)
        for _ in range(4):   # Streamlit's cleanup, maybe through another wrapper (cnnkit.keras_guard)
            if caller is None:
                break
            if caller.f_code.co_name == "_clean_problem_modules":
                return None
            caller = caller.f_back
        return original(*args, **kwargs)

    clear_session.kept_for_streamlit = True
    backend.clear_session = clear_session


def owner_id() -> str:
    """This browser's identity (see cnnkit.identity); the only way pages learn who the student is."""
    if not identity.is_owner_id(st.session_state.get("owner_id")):
        _identity()
    return st.session_state.owner_id


# --- what the student chose, kept on the server (a reload gives it back) -------------------------
def _restore(owner: str) -> None:
    """Once per browser session: the dataset, spec and settings this student last chose."""
    from cnnkit.spec import ModelSpec

    ss = st.session_state
    ss.restored_for = owner
    saved = student_state.load(owner)
    if saved.get("dataset") in datasets.CATALOGUE:
        ss.dataset_name = saved["dataset"]
    if isinstance(saved.get("spec"), dict):
        try:
            ss.spec = ModelSpec.from_dict(saved["spec"]).to_dict()
            ss.spec_preset = saved.get("spec_preset")
        except (UserError, KeyError, TypeError, ValueError):
            pass  # a spec this version cannot read: start from the preset instead
    for key in ("hyper", "hyper_for"):
        if key in saved:
            ss[f"saved_{key}"] = saved[key]
    ss.saved_state = saved
    if "upload" in saved:
        # The uploaded dataset in use: its kept bytes go through the same checks as the upload did
        # (dataset() loads them); bytes that are gone or damaged leave the catalogue dataset in use.
        record = saved["upload"]
        data = student_state.kept_upload(owner, record)
        if data is None:
            student_state.forget_upload(owner)
            remember(upload=None)
            if isinstance(record, dict) and isinstance(record.get("filename"), str):
                message = (f"Your uploaded dataset {inert(record['filename'][:80])} is no longer kept on the server "
                           "(uploads that were not used for a while make room for newer ones): you are back on "
                           "the chosen catalogue dataset. Upload the file again on the Data page to use it.")
                st.toast(message, icon=":material/info:", duration="long")
        else:
            name = record.get("dataset") if record.get("dataset") in datasets.CATALOGUE else ""
            ss.upload = (hashlib.sha256(data).hexdigest()[:16], record["filename"], name)
            ss.upload_bytes = data


def remember(**changes) -> None:
    """Keep these choices for the next reload (keys of cnnkit.student_state.KEYS; None forgets one).

    Written only when something changed, so a rerun costs no disk write.
    """
    ss = st.session_state
    current = dict(ss.get("saved_state") or {})
    merged = student_state.merge(current, **changes)
    if merged != current:
        student_state.save(owner_id(), merged)
        ss.saved_state = merged


# --- values a page owns ------------------------------------------------------------------------
def owned(key: str, default=None):
    """A page-owned value in st.session_state, set to `default` the first time it is read."""
    return st.session_state.setdefault(key, default)


def owned_choice(key: str, options, default):
    """A page-owned value that must be one of `options`: set to `default` the first time, and again whenever it
    is not among them (a class of the dataset or model used before)."""
    if owned(key, default) not in options:
        st.session_state[key] = default
    return st.session_state[key]


def bind(key: str, on_change=None) -> dict:
    """Widget arguments that make a widget edit the page-owned value `key` (which must exist).

    Streamlit forgets a keyed widget's value when a run does not draw it (another page was
    shown), so the value lives under `key` and the widget under its own key, seeded from
    the value on every run; its change is copied back before the page runs again.
    """
    ss = st.session_state
    wkey = f"_w.{key}"
    ss[wkey] = ss[key]

    def copy_back() -> None:
        ss[key] = ss[wkey]
        if on_change is not None:
            on_change()

    return {"key": wkey, "on_change": copy_back}


def flash_error(scope: str, message: str) -> None:
    """An error caused by an action (a callback); shown once, by the next run of the page, then gone."""
    st.session_state[f"_error.{scope}"] = message


def show_flash_error(scope: str) -> None:
    message = st.session_state.pop(f"_error.{scope}", None)
    if message:
        st.error(inert_message(message), icon=":material/error:")


def dataset() -> datasets.Dataset:
    """The student's dataset: an upload if one is active, else the chosen catalogue entry."""
    ss = st.session_state
    if ss.get("upload"):
        digest, filename, name = ss.upload
        data = ss.get("upload_bytes")
        if data is not None:
            try:
                return _uploaded_dataset(digest, filename, name, data)
            except DatasetError:  # a kept upload that no longer passes (a limit was lowered): forget it
                _leave_upload()
        ss.upload = None  # the bytes are gone: fall back to the catalogue
    try:
        with st.spinner(f"Loading {datasets.CATALOGUE[ss.dataset_name].title}…"):
            return _catalogue_dataset(ss.dataset_name)
    except DatasetError:
        ss.dataset_name = DEFAULT_DATASET
        return _catalogue_dataset(DEFAULT_DATASET)


def choose_dataset(name: str) -> datasets.Dataset:
    """Switch to a catalogue dataset (leaving any upload); on failure raise DatasetError and keep the current one."""
    with st.spinner(f"Loading {datasets.CATALOGUE[name].title}…"):
        ds = _catalogue_dataset(name)
    st.session_state.dataset_name = name
    _leave_upload()
    remember(dataset=name)
    return ds


def _leave_upload() -> None:
    st.session_state.upload = None
    st.session_state.pop("upload_bytes", None)
    if st.session_state.get("saved_state", {}).get("upload") is not None:
        student_state.forget_upload(owner_id())
        remember(upload=None)


def upload_in_use() -> str | None:
    """The file name of the uploaded dataset in use, or None when a catalogue dataset is."""
    up = st.session_state.get("upload")
    return up[1] if up and st.session_state.get("upload_bytes") is not None else None


def use_upload(filename: str, data: bytes, name: str | None) -> datasets.Dataset:
    """Switch to an uploaded .npz/.zip; on failure raise DatasetError and keep the current dataset.

    `name`: the catalogue dataset the file may stand in for (same image shape and class count).
    """
    digest = hashlib.sha256(data).hexdigest()[:16]
    with st.spinner(f"Reading {inert(filename)}…"):
        ds = _uploaded_dataset(digest, filename, name or "", data)
    st.session_state.upload = (digest, filename, name or "")
    st.session_state.upload_bytes = data
    # Kept on the server for this browser (once, by its hash), so a reload brings it back.
    kept = student_state.keep_upload(owner_id(), data, filename)
    if kept is None:  # not kept (over the limit): a reload goes back to the catalogue dataset
        student_state.forget_upload(owner_id())
    remember(upload=None if kept is None else {**kept, "dataset": name or ""})
    return ds


def current_spec():
    """The student's ModelSpec; the default (lecture) preset for the current dataset until they choose one."""
    from cnnkit import presets
    from cnnkit.spec import ModelSpec

    ds = dataset()
    raw = st.session_state.get("spec")
    if raw is not None:
        spec = raw if isinstance(raw, ModelSpec) else ModelSpec.from_dict(raw)
        # A model built for another dataset keeps its layers and takes this dataset's image shape.
        return spec if tuple(spec.input_shape) == tuple(ds.image_shape) else spec.with_input_shape(ds.image_shape)
    return presets.get(presets.DEFAULT, input_shape=ds.image_shape, num_classes=ds.num_classes).spec


def set_spec(spec) -> None:
    st.session_state.spec = spec.to_dict()
    remember(spec=st.session_state.spec, spec_preset=st.session_state.get("spec_preset"))


# Kept when the student switches model or dataset; the rest follows the new model's suggested settings.
_HYPER_KEPT_ON_SWITCH = ("validation_split", "labels", "early_stopping", "patience", "seed", "train_images")


def current_hyper():
    """The student's training settings (a Hyper) for the current model and dataset.

    Until the student changes them they are the ones suggested for the model (its preset's, or the
    fast preset's); a switch to another model or dataset brings that model's optimizer, learning rate,
    batch size, epochs and augmentation, and keeps the student's validation split, labels, early
    stopping and seed. The Training page edits them; the Architecture page exports them.
    Not validated here: the page that uses them says what is wrong (`Hyper.validate`).
    """
    from cnnkit import presets
    from cnnkit.hyper import Hyper

    ds, spec = dataset(), current_spec()
    ss = st.session_state
    made_for = f"{spec.name}|{ds.name}"
    if ss.get("hyper") is None and isinstance(ss.get("saved_hyper"), dict):
        # What the student last set, kept across a reload (see _restore).
        try:
            ss.hyper, ss.hyper_for = Hyper.from_dict(ss.saved_hyper).to_dict(), ss.get("saved_hyper_for")
        except UserError:
            pass  # settings this version cannot read: start from the suggested ones
    if ss.get("hyper") is None or ss.get("hyper_for") != made_for:
        kept = {k: v for k, v in (ss.get("hyper") or {}).items() if k in _HYPER_KEPT_ON_SWITCH}
        ss.hyper, ss.hyper_for = {**presets.suggested_hyper(spec, len(ds.y_train)).to_dict(), **kept}, made_for
    return Hyper.from_dict(ss.hyper)


def set_hyper(hyper) -> None:
    """Replace the student's training settings (for the current model and dataset); kept across a reload."""
    current_hyper()  # settles which model and dataset they belong to
    st.session_state.hyper = hyper.to_dict()
    remember(hyper=st.session_state.hyper, hyper_for=st.session_state.hyper_for)


def show_error(err: Exception) -> None:
    """A user's mistake as one sentence; anything else still raises (it is a bug)."""
    if isinstance(err, UserError):
        st.error(inert_message(err), icon=":material/error:")
    else:
        raise err


def sidebar() -> None:
    """Dataset and model at a glance, on every page."""
    ds = dataset()
    with st.sidebar:
        st.markdown(f"**Dataset:** {inert(ds.title)}")
        st.caption(f"{len(ds.x_train):,} train · {len(ds.x_test):,} test · "
                   f"{format_shape(ds.image_shape)} · from {ds.source_text}")
        spec = current_spec()
        summary = spec.summary()
        problems = spec.validate(ds.num_classes, refuse_cost=settings.get("class_mode"))
        st.markdown(f"**Model:** {inert(spec.name or 'your model')}")
        st.caption(f"{len(spec.layers)} layers · {summary.total_params:,} parameters"
                   + (f" · {len(problems)} problem(s) to fix on the Architecture page" if problems else ""))
        job_status_line()
    nickname_box()


# --- training jobs ----------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def job_registry():
    """The one JobRegistry of this server process. It owns the Dask client: an embedded cluster of worker
    processes (CNNKIT_WORKERS), or the cluster at CNNKIT_SCHEDULER. Training never runs in this process."""
    from cnnkit import jobs

    return jobs.JobRegistry(jobs.connect)


def current_job():
    """This student's training job, re-attached after a rerun, a page switch or a browser reload.

    The job id lives in st.session_state and in the URL (`?job=`); the registry only hands a
    job to the owner id that started it, so a shared URL shows nobody else's job.
    """
    ss = st.session_state
    job_id = ss.get("job_id") or st.query_params.get("job")
    job = job_registry().get(job_id, owner=owner_id()) if job_id else None
    if job is None:
        ss.pop("job_id", None)
        if "job" in st.query_params:
            del st.query_params["job"]
        return None
    ss.job_id = job.id
    if st.query_params.get("job") != job.id:
        st.query_params["job"] = job.id  # page switches clear the URL's parameters: put it back
    return job


def set_current_job(job) -> None:
    st.session_state.job_id = job.id
    st.query_params["job"] = job.id


def job_status_line() -> None:
    """The student's training job in one line of the sidebar, on every page, kept live while it runs."""
    job = current_job()
    if job is None:
        return
    polling = job.state.active

    # The sidebar is drawn by the full script run; without its own poll it would show the epoch the
    # job was at when the page last ran.
    @st.fragment(run_every=JOB_POLL_SECONDS if polling else None)
    def line() -> None:
        snap = job.snapshot()
        if polling and not snap.active:
            st.rerun()  # the job just ended: redraw the page once (its buttons, its results) and stop polling
        if snap.state.value == "queued":
            st.caption(f"**Training:** waiting, number {snap.queue_position} in line")
        elif snap.state.value == "running":
            st.caption(f"**Training:** epoch {min(snap.epoch + 1, snap.epochs)}/{snap.epochs} · "
                       f"{snap.job_fraction:.0%} done")
        elif snap.state.value == "failed" and snap.message:
            # Why, in its first sentence (a job lost to a restart says so on every page, in every tab).
            st.caption(f"**Training:** failed. {snap.message.split('. ')[0].rstrip('.')}.")
        else:
            st.caption(f"**Training:** {snap.state.value}")

    line()


# --- the class: lecturer key, nicknames, limits ------------------------------------------------
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


def class_book():
    from cnnkit import classroom

    return classroom.book()


def is_lecturer() -> bool:
    """True when this browser was unlocked with the lecturer key (and the key has not changed since)."""
    return class_book().is_lecturer(owner_id(), lecturer_key())


def class_jobs() -> list:
    """Snapshots of the training jobs queued or running on this server, for the lecturer's Class page
    (the one place that reads the whole job registry)."""
    return [job.snapshot() for job in job_registry().jobs() if job.state.active]


def my_active_jobs() -> int:
    """How many of this student's jobs are queued or running."""
    return job_registry().active_count(owner_id())


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


def class_limits():
    """The lecturer's per-student limits in class mode (cnnkit.classroom.ClassLimits); None outside class mode."""
    return class_book().limits() if settings.get("class_mode") else None
