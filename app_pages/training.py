"""Training: hyper-parameters, the job's cost, Start / Stop, live progress and curves of the student's own job.

The job runs on a Dask worker process (cnnkit.jobs; the registry is one per server process); this
page only reads snapshots that the registry keeps up to date in memory. The live panel is a fragment
that polls once a second while the job is queued or running, and stops polling once it has ended.
"""

import streamlit as st

import session
from cnnkit import charts, classroom, training
from cnnkit.errors import UserError

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
st.markdown(f"**Model:** {spec.name or 'your model'} · {len(spec.layers)} layers · {params} — "
            f"**Dataset:** {ds.title} ({len(ds.x_train):,} training images, {len(ds.x_test):,} test images)")

# --- live progress -------------------------------------------------------------------------------
active = job is not None and job.state.active   # poll only while the job is queued or running


def _settings_words(h: dict) -> str:
    opt = training.OPTIMIZERS[h["optimizer"]].title
    extra = [w for w, on in (("cosine decay", h.get("lr_schedule") == "cosine"), ("augmented", h["augment"]),
                             ("early stopping", h["early_stopping"])) if on]
    return (f"{opt}, learning rate {h['learning_rate']:g}, batch {h['batch_size']}, {h['epochs']} epochs, "
            f"validation {h['validation_split']:.0%}, seed {h['seed']}" + (", " + ", ".join(extra) if extra else ""))


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
    text = training.describe_progress(snap, registry.max_jobs)
    st.subheader("Your job")
    st.caption(_settings_words(snap.hyper))
    if snap.state is training.JobState.QUEUED:
        st.info(text.status, icon=":material/hourglass_top:")
        counts = registry.counts()
        st.caption(f"{counts['running']} job(s) training now, {counts['queued']} waiting.")
    elif snap.state is training.JobState.RUNNING:
        st.markdown(f"**{text.status}**")
    elif snap.state is training.JobState.FINISHED:
        st.success(text.status, icon=":material/check_circle:")
    elif snap.state is training.JobState.STOPPED:
        st.warning(text.status, icon=":material/stop_circle:")
    else:
        st.error(text.status, icon=":material/error:")
    if snap.state is not training.JobState.QUEUED:
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
        c.metric("Training time", training.format_seconds(m["train_seconds"]))
        d.metric("Epochs", f"{m['epochs_run']}" + (f" (best {m['best_epoch']})" if m.get("best_epoch") else ""))
        if snap.run_path:
            st.caption(f"Saved as run `{snap.run_path.rsplit('/', 1)[-1]}`.")
            if any(s.path == "app_pages/evaluation.py" for s in session.existing_stages()):
                st.page_link("app_pages/evaluation.py", label="Evaluate this model", icon=":material/analytics:")
    if snap.overfitting:
        st.warning(snap.overfitting, icon=":material/trending_up:")
    if snap.history.get("loss") or snap.running_points:
        st.plotly_chart(charts.training_curves_figure(snap.history, title="Loss and accuracy",
                                                      running=snap.running_points), key="live_curves")
        st.caption("Thin line: training loss and accuracy as the batches go by (smoothed). Points: each "
                   "epoch's training and validation figures; validation is measured once per epoch.")
    elif snap.active:
        st.caption("The loss and accuracy curves start after the first few batches.")


live_panel(active)

# --- hyper-parameters --------------------------------------------------------------------------
HELP = training.HYPER_HELP
suggested = training.suggested_hyper(spec, ds.image_shape, ds.num_classes)
defaults_for = f"{spec.name}|{ds.name}"
ss = st.session_state
if ss.get("hp_defaults_for") != defaults_for:
    # A new model or dataset: start from the settings its lesson suggests.
    ss.hp_defaults_for = defaults_for
    ss.hp_optimizer = suggested.optimizer
    ss.hp_lr = float(suggested.learning_rate)
    ss.hp_momentum = float(suggested.momentum)
    ss.hp_batch = int(suggested.batch_size)
    ss.hp_epochs = int(suggested.epochs)
    ss.hp_lr_schedule = suggested.lr_schedule
    ss.setdefault("hp_val", suggested.validation_split)
    ss.setdefault("hp_labels", suggested.labels)
    ss.hp_augment = bool(suggested.augment)
    ss.setdefault("hp_early", False)
    ss.setdefault("hp_patience", suggested.patience)
    ss.setdefault("hp_seed", suggested.seed)


def _optimizer_changed() -> None:
    # Each optimizer has its own sensible step size (Adadelta needs 1.0): switch with it.
    ss.hp_lr = training.OPTIMIZERS[ss.hp_optimizer].default_lr


limits = session.class_limits()  # the lecturer's per-student limits in class mode, else None
max_epochs = min(training.MAX_EPOCHS, limits.max_epochs or training.MAX_EPOCHS) if limits else training.MAX_EPOCHS
ss.hp_epochs = min(int(ss.hp_epochs), max_epochs)

st.subheader("Settings")
if active:
    st.caption("Your job is training with the settings it started with; changes here apply to your next job.")
c1, c2, c3 = st.columns(3)
with c1:
    st.selectbox("Optimizer", list(training.OPTIMIZERS), key="hp_optimizer", on_change=_optimizer_changed,
                 format_func=lambda k: training.OPTIMIZERS[k].title)
    st.caption(training.OPTIMIZERS[ss.hp_optimizer].explanation)
    st.number_input("Learning rate", key="hp_lr", step=0.0005, format="%.4f")
    st.caption(HELP["learning_rate"])
    st.radio("Learning-rate schedule", list(training.LR_SCHEDULES), key="hp_lr_schedule", horizontal=True,
             format_func=str.capitalize)
    st.caption(HELP["lr_schedule"])
    if ss.hp_optimizer == "sgd":
        st.slider("Momentum", 0.0, 0.99, key="hp_momentum", step=0.01)
        st.caption(HELP["momentum"])
with c2:
    st.number_input("Batch size", key="hp_batch", min_value=1, step=16)
    st.caption(HELP["batch_size"])
    st.number_input("Epochs", key="hp_epochs", min_value=1, max_value=max_epochs, step=1)
    st.caption(HELP["epochs"])
    st.slider("Validation split", 0.0, 0.5, key="hp_val", step=0.05)
    st.caption(HELP["validation_split"])
with c3:
    st.radio("Labels", list(training.LABEL_MODES), key="hp_labels", horizontal=True,
             format_func=lambda k: {"integer": "Integers", "one_hot": "One-hot"}[k])
    st.caption(HELP["labels"])
    st.toggle("Augment images", key="hp_augment")
    st.caption(HELP["augment"])
    st.toggle("Early stopping", key="hp_early")
    st.caption(HELP["early_stopping"])
    if ss.hp_early:
        st.number_input("Patience (epochs)", key="hp_patience", min_value=1, max_value=50)
    st.number_input("Seed", key="hp_seed", min_value=0, step=1)
    st.caption(HELP["seed"])


def _hyper_from_widgets() -> training.Hyper:
    return training.Hyper(optimizer=ss.hp_optimizer, learning_rate=ss.hp_lr, momentum=ss.hp_momentum,
                          batch_size=ss.hp_batch, epochs=ss.hp_epochs, validation_split=ss.hp_val,
                          labels=ss.hp_labels, augment=ss.hp_augment, early_stopping=ss.hp_early,
                          patience=ss.hp_patience, seed=ss.hp_seed, lr_schedule=ss.hp_lr_schedule)


def _cost_line(hyper: training.Hyper) -> None:
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
    try:
        hyper, notes = _hyper_from_widgets(), []
        if limits:
            hyper, notes = classroom.apply_limits(hyper, limits, active_jobs=0 if replace else my_jobs)
        new_job = registry.submit(spec, ds, hyper, owner=session.owner_id(), title=spec.name or "my model",
                                  replace=replace, max_active=allowed_jobs)
    except UserError as err:
        session.show_error(err)
    else:
        session.set_current_job(new_job)
        ss.class_limit_notes = notes
        st.rerun()


if limits and limits.describe():
    st.caption(limits.describe())
for note in ss.pop("class_limit_notes", []):
    st.info(note, icon=":material/school:")
_cost_line(_hyper_from_widgets())
if st.button("Start training", type="primary", icon=":material/play_arrow:",
             disabled=active and my_jobs >= allowed_jobs):
    _submit()
if my_jobs > 1:
    st.caption(f"You have {my_jobs} jobs training or waiting; this page follows the newest. The others' runs "
               "appear on the Evaluation page when they finish.")
if active and my_jobs >= allowed_jobs:
    if allowed_jobs == 1:
        st.caption("One job per student at a time, so that the whole class gets its turn.")
    if st.button("Stop my job and start one with these settings", icon=":material/restart_alt:", key="replace_job"):
        _submit(replace=True)
