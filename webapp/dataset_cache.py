"""The datasets every browser session shares: each is loaded once per process (`st.cache_resource`) and read,
never changed, by every student who uses it; a catalogue dataset by name, an upload by its file's digest."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from cnnkit import datasets


@st.cache_resource(show_spinner=False, max_entries=8)
def catalogue_dataset(name: str) -> datasets.Dataset:
    """A catalogue dataset (cnnkit.datasets.CATALOGUE), loaded once per process."""
    return datasets.load(name)


@st.cache_resource(show_spinner=False, max_entries=4)
def uploaded_dataset(digest: str, filename: str, name: str, _data: bytes) -> datasets.Dataset:
    """An uploaded .npz/.zip, read once per process; raises DatasetError for a file that does not pass."""
    # Keyed by the file's digest (the bytes themselves are not hashed again on every rerun).
    suffix = Path(filename).suffix or ".bin"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / (Path(filename).stem + suffix)
        path.write_bytes(_data)
        return datasets.load_file(path, name=name)
