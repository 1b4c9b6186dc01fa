"""Training: hyper-parameters, the job's cost, Start / Stop, live progress and curves of the student's own job.

The job runs on a Dask worker process (cnnkit.jobs; the registry is one per server process); this
page only reads snapshots that the registry keeps up to date in memory. The live panel is a fragment
that polls once a second while the job is queued or running, and stops polling once it has ended.
"""

import streamlit as st

import session
from cnnkit import charts, classroom, progress, training
from cnnkit.errors import UserError
from cnnkit.hyper import HELP, LABEL_MODES, LR_SCHEDULES, MAX_EPOCHS, OPTIMIZERS, Hyper
from cnnkit.plain_text import inert

POLL_SECONDS = 1.0

st.title("3 · Training")
st.caption("Training shows the model every training image, batch by batch, and nudges its weights to lower the "
           "loss. After each epoch it is checked on validation images it never trains on: when those stop "
           "improving, the model has begun to memorise.")

ds = session.dataset()
spec = session.current_spec()
registry = session.job_registry()
job = session.current_job()

# --- what will be trained ------------------------------------------------------------------
try:
    summary = spec.summary()
    params = f"{summary.total_params:,} parameters"
except UserError:
    params = "not buildable yet"
st.markdown(f"**Model:** {inert(spec.name or 'your model')} · {len(spec.layers)} layers · {params} — "
            f"**Dataset:** {inert(ds.title)} ({len(ds.x_train):,} training images, {len(ds.x_test):,} test images)")

# --- live progress -------------------------------------------------------------------------------
active = job is not None and job.state.active   # poll only while the job is queued or running


@st.cache_resource(max_entries=32, show_spinner=False)
def _curves(job_key: str, run_path: str | None, sizes: tuple, _history, _running):
    """One figure per computation and progress: students who share a computation share its figure. Building a
    plotly figure costs the server 0.1–0.5 s of CPU, and every student's panel polls once a second."""
    return charts.training_curves_figure(_history, title="Loss and accuracy", running=_running)


@st.fragment(run_every=POLL_SECONDS if active else None)
def live_panel(polling: bool) -> None:
    job = session.current_job()
    if job is None:
        st.info("No training job yet: check the settings below and press **Start training**. Your job keeps "
                "running while you visit other pages, and this page finds it again after a reload.",
                icon=":material/model_training:")
        return
    snap = job.snapshot()
    if polling and not snap.active:
        st.rerun()  # the job just ended: redraw the whole page once (buttons, sidebar) and stop polling
    text = progress.describe_progress(snap, registry.max_jobs)
    st.subheader("Your job")
    st.caption(snap.hyper.describe())
    if snap.state is progress.JobState.QUEUED:
        st.info(text.status, icon=":material/hourglass_top:")
        counts = registry.counts()
        st.caption(f"{counts['running']} job(s) training now, {counts['queued']} waiting.")
    elif snap.state is progress.JobState.RUNNING:
        st.markdown(f"**{text.status}**")
    elif snap.state is progress.JobState.FINISHED:
        st.success(text.status, icon=":material/check_circle:")
    elif snap.state is progress.JobState.STOPPED:
        st.warning(text.status, icon=":material/stop_circle:")
    else:
        st.error(text.status, icon=":material/error:")
    if snap.state is not progress.JobState.QUEUED:
        st.progress(snap.epoch_fraction, text=text.epoch)
        st.progress(snap.job_fraction, text=text.job)
    if snap.active and st.button("Stop", icon=":material/stop:", key="stop_job"):
        job.stop()
        st.toast("Stopping after this batch…")
    if snap.metrics.get("test_accuracy") is not None:
        m = snap.metrics
        a, b, c, d = st.columns(4)
        a.metric("Test accuracy", f"{m['test_accuracy']:.2%}")
        b.metric("Test loss", f"{m['test_loss']:.4f}")
        c.metric("Training time", progress.format_seconds(m["train_seconds"]))
        d.metric("Epochs", f"{m['epochs_run']}" + (f" (best {m['best_epoch']})" if m.get("best_epoch") else ""))
        if snap.run_path:
            st.caption(f"Saved as run `{snap.run_path.rsplit('/', 1)[-1]}`.")
            if any(s.path == "app_pages/evaluation.py" for s in session.existing_stages()):
                st.page_link("app_pages/evaluation.py", label="Evaluate this model", icon=":material/analytics:")
    if snap.overfitting:
        st.warning(snap.overfitting, icon=":material/trending_up:")
    if snap.history.get("loss") or snap.running_points:
        sizes = (tuple(sorted((k, len(v)) for k, v in snap.history.items())), len(snap.running_points))
        st.plotly_chart(_curves(job.key, snap.run_path, sizes, snap.history, snap.running_points), key="live_curves")
        st.caption("Thin line: training loss and accuracy as the batches go by (smoothed). Points: each "
                   "epoch's training and validation figures; validation is measured once per epoch.")
    elif snap.active:
        st.caption("The loss and accuracy curves start after the first few batches.")


live_panel(active)

# --- hyper-parameters --------------------------------------------------------------------------
# The settings live in the session (session.current_hyper(), a Hyper); the widgets below only edit them:
# each run loads the widgets from the session's Hyper, and every change writes a new Hyper back.
ss = st.session_state
hyper = session.current_hyper()
# widget key → (Hyper field, the widget's type)
FIELDS = {
    "hp_optimizer": ("optimizer", str), "hp_lr": ("learning_rate", float), "hp_lr_schedule": ("lr_schedule", str),
    "hp_momentum": ("momentum", float), "hp_batch": ("batch_size", int), "hp_epochs": ("epochs", int),
    "hp_val": ("validation_split", float), "hp_labels": ("labels", str), "hp_augment": ("augment", bool),
    "hp_early": ("early_stopping", bool), "hp_patience": ("patience", int), "hp_seed": ("seed", int),
    "hp_train_images": ("train_images", int),
}
for key, (name, kind) in FIELDS.items():
    value = getattr(hyper, name)
    ss[key] = None if value is None else kind(value)


def _store() -> None:
    edited = {name: ss[key] for key, (name, _) in FIELDS.items() if key in ss}
    session.set_hyper(Hyper.from_dict({**session.current_hyper().to_dict(), **edited}))


def _optimizer_changed() -> None:
    # Each optimizer has its own sensible step size (Adadelta needs 1.0): switch with it.
    ss.hp_lr = OPTIMIZERS[ss.hp_optimizer].default_lr
    _store()


limits = session.class_limits()  # the lecturer's per-student limits in class mode, else None
max_epochs = min(MAX_EPOCHS, limits.max_epochs or MAX_EPOCHS) if limits else MAX_EPOCHS
ss.hp_epochs = min(int(ss.hp_epochs), max_epochs)

st.subheader("Settings")
if active:
    st.caption("Your job is training with the settings it started with; changes here apply to your next job.")
c1, c2, c3 = st.columns(3)
with c1:
    st.selectbox("Optimizer", list(OPTIMIZERS), key="hp_optimizer", on_change=_optimizer_changed,
                 format_func=lambda k: OPTIMIZERS[k].title)
    st.caption(OPTIMIZERS[ss.hp_optimizer].explanation)
    st.number_input("Learning rate", key="hp_lr", step=0.0005, format="%.4f", on_change=_store)
    st.caption(HELP["learning_rate"])
    st.radio("Learning-rate schedule", list(LR_SCHEDULES), key="hp_lr_schedule", horizontal=True,
             format_func=str.capitalize, on_change=_store)
    st.caption(HELP["lr_schedule"])
    if ss.hp_optimizer == "sgd":
        st.slider("Momentum", 0.0, 0.99, key="hp_momentum", step=0.01, on_change=_store)
        st.caption(HELP["momentum"])
with c2:
    st.number_input("Batch size", key="hp_batch", min_value=1, step=16, on_change=_store)
    st.caption(HELP["batch_size"])
    st.number_input("Epochs", key="hp_epochs", min_value=1, max_value=max_epochs, step=1, on_change=_store)
    st.caption(HELP["epochs"])
    st.slider("Validation split", 0.0, 0.5, key="hp_val", step=0.05, on_change=_store)
    st.caption(HELP["validation_split"])
    st.number_input("Training images", key="hp_train_images", min_value=2, step=500, on_change=_store,
                    placeholder=f"all {len(ds.y_train):,}")
    st.caption(HELP["train_images"])
with c3:
    st.radio("Labels", list(LABEL_MODES), key="hp_labels", horizontal=True,
             format_func=lambda k: {"integer": "Integers", "one_hot": "One-hot"}[k], on_change=_store)
    st.caption(HELP["labels"])
    st.toggle("Augment images", key="hp_augment", on_change=_store)
    st.caption(HELP["augment"])
    st.toggle("Early stopping", key="hp_early", on_change=_store)
    st.caption(HELP["early_stopping"])
    if ss.hp_early:
        st.number_input("Patience (epochs)", key="hp_patience", min_value=1, max_value=50, on_change=_store)
    st.number_input("Seed", key="hp_seed", min_value=0, step=1, on_change=_store)
    st.caption(HELP["seed"])


def _cost_line(hyper: Hyper) -> None:
    try:
        cost = registry.estimate(spec, ds, hyper)
    except UserError:
        return  # the settings or the model have a problem: pressing Start says which, in a sentence
    st.caption(f"**Cost:** {cost.words()}")
    if cost.advice:
        st.warning(cost.advice, icon=":material/timer_off:")
    for note in training.cost_notes(spec, hyper, len(ds.y_train)):  # over a limit: refused at Start in class mode
        st.warning(note, icon=":material/speed:")


allowed_jobs = limits.jobs_at_a_time if limits else 1   # a lecturer may allow a few side by side
my_jobs = session.my_active_jobs()


def _submit(replace: bool = False) -> None:
    # A button callback: it runs before the page's next run, so that very run (its progress panel comes
    # first) already shows the student's place in line: the registry answers without asking the cluster.
    try:
        hyper, notes = session.current_hyper(), []
        if limits:
            hyper, notes = classroom.apply_limits(hyper, limits, active_jobs=0 if replace else my_jobs)
        new_job = registry.submit(spec, ds, hyper, owner=session.owner_id(), title=spec.name or "my model",
                                  replace=replace, max_active=allowed_jobs)
    except UserError as err:
        session.flash_error("training.start", str(err))
    else:
        session.set_current_job(new_job)
        ss.class_limit_notes = notes


if limits and limits.describe():
    st.caption(limits.describe())
for note in ss.pop("class_limit_notes", []):
    st.info(note, icon=":material/school:")
_cost_line(session.current_hyper())
st.button("Start training", type="primary", icon=":material/play_arrow:", on_click=_submit,
          disabled=active and my_jobs >= allowed_jobs)
session.show_flash_error("training.start")
if my_jobs > 1:
    st.caption(f"You have {my_jobs} jobs training or waiting; this page follows the newest. The others' runs "
               "appear on the Evaluation page when they finish.")
if active and my_jobs >= allowed_jobs:
    if allowed_jobs == 1:
        st.caption("One job per student at a time, so that the whole class gets its turn.")
    st.button("Stop my job and start one with these settings", icon=":material/restart_alt:", key="replace_job",
              on_click=_submit, kwargs={"replace": True})
