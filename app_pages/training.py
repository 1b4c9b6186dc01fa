"""Training: hyper-parameters, the job's cost, Start / Stop, live progress and curves of the student's own job.

The job runs on a Dask worker process (cnnkit.jobs; the registry is one per server process); this
page only reads snapshots that the registry keeps up to date in memory. The live panel is a fragment
that polls once a second while the job is queued or running, and stops polling once it has ended
(webapp/job_panel.py, which the Draw page shows too).
"""

import streamlit as st

from cnnkit import training
from cnnkit.errors import UserError
from cnnkit.hyper import HELP, LABEL_MODES, LR_SCHEDULES, MAX_EPOCHS, OPTIMIZERS, Hyper
from cnnkit.jobs import start
from cnnkit.plain_text import inert
from webapp import browser_identity, job_panel, student, training_jobs, user_errors

st.title("3 · Training")
st.caption("Training shows the model every training image, batch by batch, and nudges its weights to lower the "
           "loss. After each epoch it is checked on validation images it never trains on: when those stop "
           "improving, the model has begun to memorise.")

ds = student.dataset()
spec = student.current_spec()
registry = training_jobs.job_registry()
job = training_jobs.current_job()

# --- what will be trained ------------------------------------------------------------------
try:
    summary = spec.summary()
    params = f"{summary.total_params:,} parameters"
except UserError:
    params = "not buildable yet"
st.markdown(f"**Model:** {inert(spec.name or 'your model')} · {len(spec.layers)} layers · {params} — "
            f"**Dataset:** {inert(ds.title)} ({len(ds.x_train):,} training images, {len(ds.x_test):,} test images)")

# --- live progress -------------------------------------------------------------------------------
active = job is not None and job.state.active
job_panel.show(no_job="No training job yet: check the settings below and press **Start training**. Your job keeps "
                      "running while you visit other pages, and this page finds it again after a reload.")

# --- hyper-parameters --------------------------------------------------------------------------
# The settings live in the session (student.current_hyper(), a Hyper); the widgets below only edit them:
# each run loads the widgets from the session's Hyper, and every change writes a new Hyper back.
ss = st.session_state
hyper = student.current_hyper()
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
    student.set_hyper(Hyper.from_dict({**student.current_hyper().to_dict(), **edited}))


def _optimizer_changed() -> None:
    # Each optimizer has its own sensible step size (Adadelta needs 1.0): switch with it.
    ss.hp_lr = OPTIMIZERS[ss.hp_optimizer].default_lr
    _store()


limits = start.class_limits()  # the lecturer's per-student limits in class mode, else None

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
    # The box takes what the student types (a class cap does not clamp it): the one Start path lowers it and
    # the note above Start says so with the student's own number.
    st.number_input("Epochs", key="hp_epochs", min_value=1, max_value=MAX_EPOCHS, step=1, on_change=_store)
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
my_jobs = training_jobs.my_active_jobs()


def _submit(replace: bool = False) -> None:
    # A button callback: it runs before the page's next run, so that very run (its progress panel comes
    # first) already shows the student's place in line: the registry answers without asking the cluster.
    # The one Start path applies the class limits and says what they changed.
    try:
        started = start.start_training(spec, ds, student.current_hyper(), owner=browser_identity.owner_id(),
                                       title=spec.name or "my model", registry=registry, replace=replace)
    except UserError as err:
        user_errors.flash_error("training.start", str(err))
    else:
        training_jobs.set_current_job(started.job)
        ss.class_limit_notes = list(started.notes)


if limits and limits.describe():
    st.caption(limits.describe())
planned = start.plan_start(student.current_hyper(), len(ds.y_train), limits=limits)  # what Start would train
for note in ss.pop("class_limit_notes", None) or planned.notes:
    st.info(note, icon=":material/school:")
_cost_line(planned.hyper)
st.button("Start training", type="primary", icon=":material/play_arrow:", on_click=_submit,
          disabled=active and my_jobs >= allowed_jobs)
user_errors.show_flash_error("training.start")
if my_jobs > 1:
    st.caption(f"You have {my_jobs} jobs training or waiting; this page follows the newest. The others' runs "
               "appear on the Evaluation page when they finish.")
if active and my_jobs >= allowed_jobs:
    if allowed_jobs == 1:
        st.caption("One job per student at a time, so that the whole class gets its turn.")
    st.button("Stop my job and start one with these settings", icon=":material/restart_alt:", key="replace_job",
              on_click=_submit, kwargs={"replace": True})
