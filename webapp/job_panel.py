"""The live panel of the student's training job, one for every page that follows a job: its state, the epoch
and job progress bars and Stop, polled while the job is queued (every 3 s) or running (every second:
progress.poll_seconds); the page redraws once when the job starts and once when it ends. The Training page shows
it whole (settings, state, results, curves); the Draw page, waiting for its first model, shows it brief (what
trains on which dataset, the bars, Stop)."""

from __future__ import annotations

import streamlit as st

from cnnkit import charts, datasets, progress
from cnnkit.plain_text import inert
from webapp.stages import existing_stages
from webapp.training_jobs import current_job, job_registry

# After Start the student looks at the panel, wherever the page was scrolled: a tiny Components v2 snippet
# scrolls the panel to the top of the view (once per Start: `data.nonce` changes).
_SCROLL_JS = """
export default function (component) {
  const { data } = component;
  if (!data || window.__cnnlabPanelNonce === data.nonce) return;
  window.__cnnlabPanelNonce = data.nonce;
  const go = (tries) => {
    const el = document.querySelector(".st-key-job_panel");
    if (el) el.scrollIntoView({ block: "start" });
    else if (tries > 0) setTimeout(() => go(tries - 1), 100);
  };
  setTimeout(() => go(30), 50);
}
"""
PANEL_CURVES_PX = 340   # the live curves' height: the whole panel fits a 1280×720 projector
_scroller = st.components.v2.component("cnnlab_panel_scroll", js=_SCROLL_JS)


def bring_into_view(nonce: str) -> None:
    """Scroll the job panel to the top of the view, once for each new `nonce` (a job's id)."""
    _scroller(key="job_panel_scroll", data={"nonce": nonce}, height=0)


def show(*, brief: bool = False, stop_key: str = "stop_job", stop_label: str = "Stop",
         no_job: str | None = None) -> None:
    """The panel of the student's current job, drawn where it is called.

    `brief`: one sentence of what is training (the Draw page) instead of the whole panel (the Training page).
    `no_job`: what to say when there is no job (nothing when None).
    """
    job = current_job()
    drawn = job.state if job is not None else None
    polling = drawn is not None and drawn.active   # poll only while the job is queued or running

    @st.fragment(run_every=progress.poll_seconds(drawn) if polling else None)
    def panel() -> None:
        job = current_job()
        if job is None:
            if polling:
                st.rerun()  # the job is gone: the whole page redraws without it
            if no_job:
                st.info(no_job, icon=":material/model_training:")
            return
        snap = job.snapshot()
        if polling and snap.state is not drawn:
            # the job just started (poll faster) or ended: redraw the whole page once (buttons, sidebar, its run)
            st.rerun()
        text = progress.describe_progress(snap, job_registry().max_jobs)
        if brief:
            _one_sentence(snap, text)
        else:
            _heading_and_state(snap, text)
        if snap.state is not progress.JobState.QUEUED:
            st.progress(snap.epoch_fraction, text=text.epoch)
            st.progress(snap.job_fraction, text=text.job)
        if snap.active and st.button(stop_label, icon=":material/stop:", key=stop_key):
            job.stop()
            st.toast("Stopping after this batch…")
        if not brief:
            _results(job, snap)

    with st.container(key="job_panel"):
        panel()


def _one_sentence(snap, text) -> None:
    info = datasets.CATALOGUE.get(snap.dataset_name)
    on = inert(info.title if info else snap.dataset_name)
    st.info(f"**{inert(snap.title)}** is training on {on}. {text.status} This page "
            "uses the model as soon as it is saved; you can visit other pages meanwhile.",
            icon=":material/model_training:")


def _heading_and_state(snap, text) -> None:
    st.markdown(f"**Your job** · {snap.hyper.describe()}")
    if snap.state is progress.JobState.QUEUED:
        st.info(text.status, icon=":material/hourglass_top:")
        counts = job_registry().counts()
        st.caption(f"{counts['running']} job(s) training now, {counts['queued']} waiting.")
    elif snap.state is progress.JobState.RUNNING:
        st.markdown(f"**{text.status}**")
    elif snap.state is progress.JobState.FINISHED:
        st.success(text.status, icon=":material/check_circle:")
    elif snap.state is progress.JobState.STOPPED:
        st.warning(text.status, icon=":material/stop_circle:")
    else:
        st.error(text.status, icon=":material/error:")


@st.cache_resource(max_entries=32, show_spinner=False)
def _curves(job_key: str, run_path: str | None, sizes: tuple, _history, _running):
    """One figure per computation and progress: students who share a computation share its figure. Building a
    plotly figure costs the server 0.1–0.5 s of CPU, and every student's panel polls once a second."""
    fig = charts.training_curves_figure(_history, title="Loss and accuracy", running=_running)
    return fig.update_layout(height=PANEL_CURVES_PX)


def _results(job, snap) -> None:
    """The test figures and saved run once the job has them, a word on overfitting, and the curves."""
    if snap.metrics.get("test_accuracy") is not None:
        m = snap.metrics
        a, b, c, d = st.columns(4)
        a.metric("Test accuracy", f"{m['test_accuracy']:.2%}")
        b.metric("Test loss", f"{m['test_loss']:.4f}")
        c.metric("Training time", progress.format_seconds(m["train_seconds"]))
        d.metric("Epochs", f"{m['epochs_run']}" + (f" (best {m['best_epoch']})" if m.get("best_epoch") else ""))
        if snap.run_path:
            st.caption(f"Saved as run `{snap.run_path.rsplit('/', 1)[-1]}`.")
            if any(s.path == "app_pages/evaluation.py" for s in existing_stages()):
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
