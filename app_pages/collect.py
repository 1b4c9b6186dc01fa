"""Collect drawings: add drawings to the open collection, one class at a time (the class with the fewest
drawings so far), each prepared exactly as the Draw page prepares the canvas for a model. In class mode the
collection is the lecturer's; otherwise a student opens one of their own (their personal dataset)."""

import streamlit as st

from cnnkit import class_drawings, drawing, settings
from cnnkit.errors import DrawingError, UserError
from cnnkit.plain_text import inert, inert_message
from webapp import browser_identity, canvas, drawn_collection, lecturer, user_errors

CANVAS = 280
ss = st.session_state
owner = browser_identity.owner_id()
class_mode = settings.get("class_mode")
store = drawn_collection.my_store()

st.title("Collect drawings" if class_mode else "Draw your own dataset")


def _stored(step):
    """A step on the drawings' store; a disk that refuses it (read-only, full) is the sentence, and the page stops."""
    try:
        return step()
    except UserError as err:
        user_errors.show_error(err)
        st.stop()


c = _stored(store.current)
if not class_mode:
    with st.expander("Open a collection of your own" if c is None else "Start another collection of your own",
                     expanded=c is None, icon=":material/add:"):
        with st.form("own_collection", border=False, enter_to_submit=False):
            name = st.text_input("Name", value="my shapes", max_chars=class_drawings.NAME_MAX)
            classes = st.text_input("Class names, separated by commas (2–20)", value="circle, square, triangle")
            if st.form_submit_button("Open it", type="primary", icon=":material/play_arrow:"):
                try:
                    store.open(name, classes)
                except UserError as err:
                    user_errors.show_error(err)
                else:
                    st.rerun()
    if c is not None:
        if c.is_open and st.button("Close it (no more drawings)", key="collect_own_close", icon=":material/lock:"):
            _stored(lambda: store.close(c.id))
            st.rerun()
        elif not c.is_open and st.button("Reopen it", key="collect_own_reopen", icon=":material/lock_open:"):
            _stored(lambda: store.reopen(c.id))
            st.rerun()

if c is None:
    if class_mode:
        st.info("No collection is open yet: your lecturer opens one on the Class page, then you draw here.",
                icon=":material/draw:")
    st.stop()

if not c.is_open:
    st.info(inert_message(f"The collection “{c.name}” is closed: no more drawings are taken. Pick it on the Data "
                          "page to train on it."), icon=":material/lock:")

# The class asked for stays the same until this drawing is added, whatever the others draw meanwhile.
ss.setdefault("draw_canvas_gen", 0)
asked = ss.get("collect.asked")
if not asked or asked[0] != (c.id, ss.draw_canvas_gen):
    asked = ss["collect.asked"] = ((c.id, ss.draw_canvas_gen), store.next_class(c.id))
k = asked[1]
class_name = c.class_names[k]

input_col, result_col = st.columns(2)
with input_col:
    if c.is_open:
        with st.container(key="collect_ask"):   # app.css: large type
            st.markdown(f"Draw: **{inert(class_name)}**")
    drawn = canvas.draw(CANVAS, hint=inert_message(f"Draw one {class_name} with the mouse or a finger, as large or "
                                                   "small as you like, then add it."))

with result_col:
    message = ss.pop("collect.added", None)
    if message:
        st.success(inert_message(message), icon=":material/check_circle:")
    user_errors.show_flash_error("collect")
    if c.is_open and st.button(inert(f"Add this {class_name[:24]}"), type="primary", icon=":material/add:",
                               key="collect_add"):
        try:
            # exactly as the Draw page prepares the canvas; a refusal names the class asked for
            prepared = drawing.prepare_drawing(drawn.image, what=class_name)
            store.add(c.id, owner, class_drawings.to_pixels(prepared.x), k)
            if class_mode:
                lecturer.class_book().number(owner)   # the Class page names them "student N" (or their nickname)
        except (DrawingError, UserError) as err:
            user_errors.show_error(err)
        else:
            ss["collect.added"] = f"Added to “{c.name}” as {class_name}. Now the next one."
            ss.draw_canvas_gen += 1   # a fresh canvas for the next drawing
            st.rerun()
    if st.button("Undo my last drawing", icon=":material/undo:", key="collect_undo"):
        gone = _stored(lambda: store.undo_last(c.id, owner))
        if gone is None:
            st.info("You have no drawings in this collection to undo.")
        else:
            ss["collect.added"] = f"Removed your last drawing (a {c.class_names[gone.class_index]})."
            st.rerun()
    st.markdown(inert_message(class_drawings.contribution_sentence(store, c.id, owner)))
    st.dataframe(class_drawings.class_rows(store, c.id), hide_index=True, key="collect_totals")
drawn_collection.grid(store.latest(c.id, 20, owner=owner), c.class_names, "Your latest drawings, as stored (28×28)")
