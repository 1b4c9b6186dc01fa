"""The student's own choices in this browser session: the dataset (a catalogue entry or an upload), the model
(a ModelSpec) and the training settings (a Hyper); each change is kept on the server for this browser
(cnnkit.student_state) and given back on a reload (`init`)."""

from __future__ import annotations

import hashlib

import streamlit as st

from cnnkit import datasets, disk_faults, student_state
from cnnkit.errors import DatasetError, UserError
from cnnkit.plain_text import inert
from webapp import browser_identity, drawn_collection
from webapp.dataset_cache import catalogue_dataset, uploaded_dataset

DEFAULT_DATASET = datasets.DEFAULT_DATASET


def init() -> None:
    """Defaults for a new session; called by app.py on every run."""
    ss = st.session_state
    browser_identity.identify()
    if "sid" in st.query_params:
        del st.query_params["sid"]  # old links carried an identity in the URL: it is ignored, and removed
    ss.setdefault("dataset_name", DEFAULT_DATASET)
    ss.setdefault("upload", None)  # (digest, filename, catalogue name) of an uploaded dataset in use
    if "restored_for" not in ss or ss.restored_for != ss.owner_id:
        _restore(ss.owner_id)


# --- what the student chose, kept on the server (a reload gives it back) -------------------------
def _restore(owner: str) -> None:
    """Once per browser session: the dataset, spec and settings this student last chose."""
    from cnnkit.spec import ModelSpec

    ss = st.session_state
    ss.restored_for = owner
    saved = student_state.load(owner)
    if saved.get("dataset") in datasets.CATALOGUE:
        ss.dataset_name = saved["dataset"]
    if isinstance(saved.get("collection"), dict):
        ss.collection = saved["collection"]   # checked when loaded (dataset()): a collection gone is left
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
        if not student_state.save(browser_identity.owner_id(), merged):
            _tell_disk_fault()
        ss.saved_state = merged


def _tell_disk_fault() -> None:
    """A disk that refused to keep the student's choices: said once, in the sidebar, for the rest of the
    session (`disk_notice`); the page goes on."""
    notice = disk_faults.sentence("state")
    if notice and not st.session_state.get("disk_notice"):
        st.session_state.disk_notice = notice
        st.toast(notice, icon=":material/hard_drive:")   # the moment it happens; the sidebar keeps it


# --- the dataset ---------------------------------------------------------------------------------
def dataset() -> datasets.Dataset:
    """The student's dataset: an upload if one is active, else the chosen catalogue entry."""
    ss = st.session_state
    if ss.get("collection"):
        try:
            return drawn_collection.dataset_of(ss.collection)
        except (UserError, KeyError, TypeError, ValueError):   # deleted, emptied, or a record this version cannot read
            _leave_collection()
    if ss.get("upload"):
        digest, filename, name = ss.upload
        data = ss.get("upload_bytes")
        if data is not None:
            try:
                return uploaded_dataset(digest, filename, name, data)
            except DatasetError:  # a kept upload that no longer passes (a limit was lowered): forget it
                _leave_upload()
        ss.upload = None  # the bytes are gone: fall back to the catalogue
    try:
        with st.spinner(f"Loading {datasets.CATALOGUE[ss.dataset_name].title}…"):
            return catalogue_dataset(ss.dataset_name)
    except DatasetError:
        ss.dataset_name = DEFAULT_DATASET
        return catalogue_dataset(DEFAULT_DATASET)


def choose_dataset(name: str) -> datasets.Dataset:
    """Switch to a catalogue dataset (leaving any upload); on failure raise DatasetError and keep the current one."""
    with st.spinner(f"Loading {datasets.CATALOGUE[name].title}…"):
        ds = catalogue_dataset(name)
    st.session_state.dataset_name = name
    _leave_upload()
    _leave_collection()
    remember(dataset=name)
    return ds


# --- a collection the class (or the student) drew ---------------------------------------------------------
def collection_in_use() -> dict | None:
    """The collection record in use ({"scope", "id", "upto"}), or None."""
    return st.session_state.get("collection") or None


def use_collection(scope: str, collection_id: int) -> datasets.Dataset:
    """Switch to a drawn collection: closed, as it is; open, a snapshot of its drawings now. On failure raise
    the CollectionError sentence and keep the current dataset."""
    record = drawn_collection.record_for(scope, collection_id)
    with st.spinner("Reading the drawings…"):
        ds = drawn_collection.dataset_of(record)
    st.session_state.collection = record
    _leave_upload()
    remember(collection=record)
    return ds


def _leave_collection() -> None:
    st.session_state.collection = None
    if st.session_state.get("saved_state", {}).get("collection") is not None:
        remember(collection=None)


def _leave_upload() -> None:
    st.session_state.upload = None
    st.session_state.pop("upload_bytes", None)
    if st.session_state.get("saved_state", {}).get("upload") is not None:
        student_state.forget_upload(browser_identity.owner_id())
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
        ds = uploaded_dataset(digest, filename, name or "", data)
    _leave_collection()
    st.session_state.upload = (digest, filename, name or "")
    st.session_state.upload_bytes = data
    # Kept on the server for this browser (once, by its hash), so a reload brings it back.
    owner = browser_identity.owner_id()
    kept = student_state.keep_upload(owner, data, filename)
    if kept is None:  # not kept (over the limit, or a disk that refuses it): a reload goes back to the catalogue
        student_state.forget_upload(owner)
        _tell_disk_fault()
    remember(upload=None if kept is None else {**kept, "dataset": name or ""})
    return ds


# --- the model and its training settings ---------------------------------------------------------
def current_spec():
    """The student's ModelSpec; the default (lecture) preset for the current dataset until they choose one."""
    from cnnkit import presets
    from cnnkit.spec import ModelSpec

    ds = dataset()
    raw = st.session_state.get("spec")
    if raw is not None:
        spec = raw if isinstance(raw, ModelSpec) else ModelSpec.from_dict(raw)
        # A model built for another dataset keeps its layers and takes this dataset's image shape.
        spec = spec if tuple(spec.input_shape) == tuple(ds.image_shape) else spec.with_input_shape(ds.image_shape)
        return drawn_collection.follow_classes(spec, ds) if ds.source == "collection" else spec
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
