"""Training jobs as the web process sees them: the one JobRegistry of this server process (it owns the Dask
client; training never runs here), this student's current job found again after a rerun, a page switch or a
reload, and the counts the Training and Class pages need."""

from __future__ import annotations

import streamlit as st

from webapp.browser_identity import owner_id


@st.cache_resource(show_spinner=False)
def job_registry():
    """The one JobRegistry of this server process. It owns the Dask client: an embedded cluster of worker
    processes (CNNKIT_WORKERS), or the cluster at CNNKIT_SCHEDULER. Training never runs in this process."""
    from cnnkit import jobs

    return jobs.JobRegistry(jobs.connect)


def current_job():
    """This student's training job, found by the browser's identity: every tab of the browser (a rerun, a page
    switch, a reload, a second tab) finds the same job, with its Stop and Replace.

    The registry answers by owner (`JobRegistry.job_for`: the newest active job, else the newest ended one,
    a job lost to a server restart included). The job id in st.session_state and the URL (`?job=`) is only a
    harmless extra: a fallback, and only for its owner, so a shared URL shows nobody else's job.
    """
    ss = st.session_state
    job = job_registry().job_for(owner_id(), ss.get("job_id") or st.query_params.get("job"))
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


def class_jobs() -> list:
    """Snapshots of the training jobs queued or running on this server, for the lecturer's Class page
    (the one place that reads the whole job registry)."""
    return [job.snapshot() for job in job_registry().jobs() if job.state.active]


def server_problems() -> list[str]:
    """What the lecturer should know about the server: a disk that refuses writes, a cluster that is away or
    would not take CNN Lab's settings (cnnkit.disk_faults, ClusterLink.problems)."""
    from cnnkit import classroom, disk_faults, runs, student_state

    disk_faults.probe("runs", runs.runs_dir())
    disk_faults.probe("state", student_state.state_dir())
    disk_faults.probe("class", classroom.class_dir())
    return disk_faults.problems() + job_registry().cluster.problems()


def my_active_jobs() -> int:
    """How many of this student's jobs are queued or running."""
    return job_registry().active_count(owner_id())
