"""The student's uploaded model: a model file (or an architecture JSON with its weights) brought from a lab,
read once per process per file hash (`st.cache_resource`), and kept in this browser session for as long as
the student keeps it, so the Evaluation and Draw pages find the same one.

Streamlit forgets a file uploader's files when a page that does not draw it runs, so the files live under
this module's own key; the uploader only replaces them (new files) or forgets them (its ✕, or Forget).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from cnnkit import evaluation, model_files
from cnnkit.errors import UserError
from cnnkit.plain_text import inert, inert_message
from webapp import user_errors

_KEPT = "uploaded_model.files"  # [(name, bytes), …] of the kept upload, in session state
TYPES = ["keras", "h5", "hdf5", "h5py", "json"]
LABEL = ("A Keras model that takes this dataset's images: .keras, a Keras 2 .h5/.h5py file, "
         "or an architecture .json together with its weights .h5")


@dataclass(frozen=True)
class UploadedModel:
    """The kept model: the files it came in, their hash and what was read from them."""

    files: tuple[tuple[str, bytes], ...]
    digest: str
    found: model_files.ModelFile

    @property
    def names(self) -> str:
        return " and ".join(name for name, _ in self.files)

    @property
    def model(self):
        return self.found.model

    @property
    def single_file(self) -> bytes | None:
        """The file's bytes when the model came in one file (it downloads as it came), else None."""
        return self.files[0][1] if len(self.files) == 1 else None


@st.cache_resource(show_spinner=False, max_entries=4)
def _read(digest: str, filenames: tuple[str, ...], _files: tuple[tuple[str, bytes], ...]) -> model_files.ModelFile:
    # Keyed by the files' digest; the bytes themselves are not hashed again on every rerun.
    return model_files.read_uploads(list(_files))


def digest_of(files) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(d).digest() for _, d in files)).hexdigest()[:16]


def has_kept() -> bool:
    return bool(st.session_state.get(_KEPT))


def forget() -> None:
    st.session_state.pop(_KEPT, None)


def current(dataset) -> UploadedModel | None:
    """The kept model read (from the process's cache, else from its files again) and checked against
    `dataset`; None when there is none. A model that cannot be read or does not fit raises UserError."""
    files = st.session_state.get(_KEPT)
    if not files:
        return None
    digest = digest_of(files)
    found = _read(digest, tuple(name for name, _ in files), tuple(files))
    evaluation.check_model_fits(found.model, dataset)
    return UploadedModel(tuple(files), digest, found)


def choose(dataset, key: str, label: str = LABEL) -> UploadedModel | None:
    """The uploader and the kept model: new files replace the kept ones, the uploader's ✕ or Forget drops
    them. Shows what was read (or the sentence why not); None when there is no usable model."""
    ss = st.session_state

    def _changed() -> None:
        if not ss.get(key):
            forget()  # the student removed the file

    ups = st.file_uploader(label, type=TYPES, accept_multiple_files=True, key=key, on_change=_changed,
                           help="Models are loaded in Keras's safe mode: a file that carries Python code "
                                "(a Lambda layer) is refused.")
    if ups:
        files = [(up.name, up.getvalue()) for up in ups]
        if digest_of(files) != digest_of(ss.get(_KEPT) or []):
            ss[_KEPT] = files
    if not ss.get(_KEPT):
        return None
    names = " and ".join(name for name, _ in ss[_KEPT])
    try:
        with st.spinner(f"Loading {inert(names)} in safe mode…"):
            kept = current(dataset)
    except UserError as err:
        user_errors.show_error(err)
        if not ups:  # a kept model that no longer fits (another dataset): offer to drop it
            st.button("Forget this model", key=f"{key}_forget", on_click=forget, icon=":material/delete:")
        return None
    st.caption(f"{inert(kept.names)}: {inert_message(kept.found.sentence)}")  # the sentence quotes file names
    if not ups:
        st.button(f"Forget {inert(kept.names)}", key=f"{key}_forget", on_click=forget, icon=":material/delete:",
                  help="Kept while you use the app; forget it to upload another.")
    return kept
