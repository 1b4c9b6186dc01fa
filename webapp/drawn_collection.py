"""The class-drawn dataset on the Streamlit side: which store this browser draws into (the class's in class
mode, else the student's own), its collection as a dataset shared by every session, and the lecturer's section
of the Class page (open, watch, remove, close or reopen, download). Everything shown comes from
cnnkit.class_drawings."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from cnnkit import charts, class_drawings, settings
from cnnkit.class_drawings import CollectionError, DrawingStore
from cnnkit.plain_text import inert, inert_message
from webapp import browser_identity, user_errors

LATEST_GRID = 30


def class_store() -> DrawingStore:
    return _store_at(str(class_drawings.store_for(None, class_mode=True).path))


def my_store() -> DrawingStore:
    """Where this browser draws: the class's collection in class mode, else the student's own."""
    if settings.get("class_mode"):
        return class_store()
    owner = browser_identity.owner_id()
    return _store_at(str(class_drawings.store_for(owner, class_mode=False).path))


@st.cache_resource(show_spinner=False, max_entries=64)
def _store_at(path: str) -> DrawingStore:
    return DrawingStore(path)


def store_at(path: str) -> DrawingStore:
    return _store_at(path)


@st.cache_resource(show_spinner=False, max_entries=8)
def collection_dataset(path: str, collection_id: int, upto: int | None, stamp: tuple[int, int, bool]):
    """A collection (up to drawing `upto`: a snapshot) as it is at `stamp` (drawings, newest id, open), as a
    Dataset shared by every session."""
    return class_drawings.to_dataset(_store_at(path), collection_id, upto=upto)


def store_of(scope: str) -> DrawingStore:
    """"class": the class's store; "own": this browser's own."""
    if scope == "class":
        return class_store()
    return _store_at(str(class_drawings.store_for(browser_identity.owner_id(), class_mode=False).path))


def my_scope() -> str:
    return "class" if settings.get("class_mode") else "own"


def record_for(scope: str, collection_id: int) -> dict:
    """What a student's choice of a collection keeps: closed, the whole collection; open, a snapshot (its
    drawings up to the newest now)."""
    c = store_of(scope).get(collection_id)
    upto = None if not c.is_open else store_of(scope).stamp(c.id)[1]
    return {"scope": scope, "id": int(c.id), "upto": upto}


def _version(store: DrawingStore, collection_id: int) -> tuple[int, int, bool]:
    # closing a collection changes no drawing but what its dataset says of itself ("closed")
    return (*store.stamp(collection_id), store.get(collection_id).is_open)


def dataset_of(record: dict):
    store = store_of(str(record["scope"]))
    cid, upto = int(record["id"]), record.get("upto")
    upto = None if upto is None else int(upto)
    return collection_dataset(str(store.path), cid, upto, _version(store, cid))


def options() -> list[tuple[str, str]]:
    """The collections this browser may pick on the Data page: (key, words), newest first."""
    scope = my_scope()
    store = store_of(scope)
    out = []
    try:
        for c in store.collections():
            n = sum(store.class_counts(c.id))
            if n:
                words = f"{c.title}, {n:,} images" + (" (open: a snapshot of it now)" if c.is_open else "")
                out.append((f"drawings|{scope}|{c.id}", words))
    except CollectionError:   # a disk that refuses: no collections to offer (the Class page names the disk)
        return []
    return out


def matching(ds) -> dict[str, str]:
    """The collections a model of `ds` can be tested on (the same classes; all are 28×28): key → words."""
    store = store_of(my_scope())
    out = {}
    try:
        for c in store.collections():
            n = sum(store.class_counts(c.id))
            if n and c.class_names == tuple(ds.class_names) and c.dataset_name != ds.name:
                out[f"drawings|{my_scope()}|{c.id}"] = f"{c.title}: all {n:,} drawings"
    except CollectionError:   # a disk that refuses: none to offer (the Class page names the disk)
        return {}
    return out


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_set(path: str, collection_id: int, stamp: tuple[int, int]):
    return class_drawings.as_test_set(_store_at(path), collection_id)


def test_set_of(key: str):
    """A `matching` key's collection, every drawing as a test image."""
    _, scope, cid = key.split("|")
    store = store_of(scope)
    return _test_set(str(store.path), int(cid), store.stamp(int(cid)))


def follow_classes(spec, ds):
    return class_drawings.spec_for_classes(spec, ds.num_classes)


def grid(drawings: list[class_drawings.Drawing], names: tuple[str, ...], title: str, cols: int = 10) -> None:
    if not drawings:
        return
    imgs = np.stack([d.pixels for d in drawings])
    st.html(charts.image_grid_html(imgs, [names[d.class_index] for d in drawings], cols=cols, tile_px=56,
                                   title=title))


# --- the lecturer's section of the Class page ----------------------------------------------------------
def lecturer_section() -> None:
    """Open a collection; watch it fill (per class, per student, the latest drawings); remove; close/reopen;
    download it as an .npz. A disk that refuses the store is its sentence, and the rest of the page goes on."""
    try:
        _lecturer_section()
    except CollectionError as err:
        st.error(str(err), icon=":material/hard_drive:")


def _lecturer_section() -> None:
    from webapp import lecturer

    store = class_store()
    current = store.current()
    if current is None:
        st.caption("Students draw the classes you name on their Collect drawings page, one at a time (the "
                   "class with the fewest drawings first); the drawings become a dataset everyone can train on.")
    with st.expander("Open a new collection" + (" (the open one closes)" if current and current.is_open else ""),
                     expanded=current is None, icon=":material/add:"):
        _open_form(store)
    if current is not None:
        _watch(store, current, lecturer.class_book())


def _open_form(store: DrawingStore) -> None:
    with st.form("collect_open", border=False, enter_to_submit=False):
        c1, c2 = st.columns([1, 2])
        name = c1.text_input("Name", value="shapes", max_chars=class_drawings.NAME_MAX, key="collect_name")
        classes = c2.text_input("Class names, separated by commas (2–20)", value=", ".join(class_drawings.DIGITS),
                                key="collect_classes")
        c3, c4 = st.columns(2)
        per = c3.number_input("Drawings per student", 1, 100_000, settings.get("drawings_per_student"),
                              key="collect_per_student")
        total = c4.number_input("Drawings in all", 1, 1_000_000, settings.get("drawings_total"), key="collect_total")
        if st.form_submit_button("Open the collection", type="primary", icon=":material/play_arrow:"):
            try:
                store.open(name, classes, int(per), int(total))
            except CollectionError as err:
                user_errors.show_error(err)
            else:
                st.rerun()


@st.fragment(run_every=3.0)
def _watch(store: DrawingStore, c, book) -> None:
    c = store.get(c.id)
    state = "open: students draw on the Collect drawings page" if c.is_open else "closed"
    st.markdown(f"**{inert(c.title)}** — {state}. Classes: {inert(', '.join(c.class_names))}.")
    b1, b2 = st.columns(2)
    if c.is_open:
        if b1.button("Close the collection", icon=":material/lock:", key="collect_close"):
            store.close(c.id)
            st.rerun()
    elif b1.button("Reopen it", icon=":material/lock_open:", key="collect_reopen"):
        store.reopen(c.id)
        st.rerun()
    _download(store, c, b2)
    counts = class_drawings.class_rows(store, c.id)
    k1, k2 = st.columns(2)
    k1.dataframe(counts, hide_index=True, key="collect_class_counts")
    students = class_drawings.student_rows(store, c.id, book.labels_by_key(store.student_counts(c.id)))
    k2.dataframe([{k: v for k, v in r.items() if k != "key"} for r in students], hide_index=True,
                 key="collect_student_counts")
    per_class = " · ".join(f"{r['class']} {r['drawings']:,}" for r in counts)
    st.markdown(inert_message(f"{sum(r['drawings'] for r in counts):,} drawings by {len(students)} "
                              f"student{'s' * (len(students) != 1)} ({per_class}); at most {c.per_student:,} each, "
                              f"{c.total:,} in all."))
    latest = store.latest(c.id, LATEST_GRID)
    grid(latest, c.class_names, f"The latest {len(latest)} drawings (newest first)")
    r1, r2 = st.columns(2)
    if latest:
        pick = r1.selectbox("Remove one drawing", [d.id for d in latest], key="collect_remove_pick",
                            format_func=lambda i: _drawing_words(i, latest, c.class_names))
        if r1.button("Remove it", icon=":material/delete:", key="collect_remove_one"):
            store.remove(int(pick))
            st.rerun(scope="fragment")
    if students:
        who = r2.selectbox("Remove everything from one student", [r["key"] for r in students],
                           format_func={r["key"]: f"{r['student']} ({r['drawings']})" for r in students}.get,
                           key="collect_remove_student_pick")
        if r2.button("Remove their drawings", icon=":material/person_remove:", key="collect_remove_student"):
            n = store.remove_student(c.id, who)
            st.toast(f"Removed {n} drawings.")
            st.rerun(scope="fragment")


def _drawing_words(drawing_id: int, latest, names) -> str:
    d = next(d for d in latest if d.id == drawing_id)
    return f"#{d.id}: {names[d.class_index]} (position {latest.index(d) + 1} in the grid)"


def _download(store: DrawingStore, c, col) -> None:
    try:
        ds = collection_dataset(str(store.path), c.id, None, _version(store, c.id))
    except CollectionError as err:
        col.caption(str(err))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = class_drawings.export_npz(ds, Path(tmp) / "drawings.npz").read_bytes()
    col.download_button(f"Download {len(ds.x_train) + len(ds.x_test):,} drawings (.npz)", data,
                        file_name=f"{ds.name.split(':', 1)[1]}.npz", mime="application/octet-stream",
                        icon=":material/download:", key="collect_download")
