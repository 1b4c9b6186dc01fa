"""Stage 5: draw a digit (or pick a picture) and watch the student's own model read it — and see why.

The drawing is prepared the way MNIST was (cnnkit.drawing); the model answers through a
compiled single-image call (cnnkit.predict) with every class's probability. Below, on
demand: the preparation step by step beside the naive shrink most apps use, where the
evidence for any class lies (Grad-CAM, cnnkit.explain), one convolution worked out by
hand on the student's own filters, and the feature maps. Fashion-MNIST and CIFAR-10 models
get a test-image picker and an upload instead of the canvas. With no model yet, the page
offers to train the lecture preset in the background.

The canvas and the answer live in one fragment: a stroke reruns only them (and the view
that is open), never the whole page. Three workarounds for streamlit-drawable-canvas 0.13
live here (see `canvas_tools`): its floating toolbar is hidden, because while invisible it
still swallows strokes that start in the canvas's top band; Clear/Undo press the
component's own buttons in the browser, because a Clear that remounts the canvas through a
new key loses the strokes drawn before the new canvas arrives; and pen up presses its
"Update the app" button, because on its own it waits 200 ms before sending a stroke.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import streamlit as st

import session
from cnnkit import charts, datasets, drawing, explain, predict, progress, run_comparison, runs
from cnnkit.errors import DrawingError, UserError
from cnnkit.plain_text import inert
from cnnkit.spec import format_shape

CANVAS = 280  # pixels; ten times MNIST's 28
STEP_SIZE = 112  # each preparation step is shown this many pixels wide
TILE = 72  # feature-map tiles
SEEN = 168  # "what the model sees": 28×28 enlarged six times
VIEWS = ["Why this answer", "How it was prepared", "The convolution", "Feature maps"]

st.title("5 · Draw & predict")
st.caption("Give the model an image it has never seen, read its answer — then look inside: why it answered, "
           "and how its convolutions compute.")

ss = st.session_state
ds = session.dataset()
registry = session.job_registry()
owner = session.owner_id()
my_runs = runs.list_runs(owner=owner, dataset_name=ds.name)
if (damaged := runs.damaged_note()) is not None:
    st.warning(damaged, icon=":material/folder_off:")


# --- no model yet: offer the lecture preset ------------------------------------------------------
@st.fragment(run_every=1.0)
def job_progress() -> None:
    job = session.current_job()
    if job is None or not job.state.active:
        st.rerun()  # it has finished: the whole page redraws and finds the new run
    snap = job.snapshot()
    text = progress.describe_progress(snap, registry.max_jobs)
    info = datasets.CATALOGUE.get(snap.dataset_name)
    on = inert(info.title if info else snap.dataset_name)
    st.info(f"**{inert(snap.title)}** is training on {on}. {text.status} This page "
            "uses the model as soon as it is saved; you can visit other pages meanwhile.",
            icon=":material/model_training:")
    if snap.state is not progress.JobState.QUEUED:
        st.progress(snap.epoch_fraction, text=text.epoch)
        st.progress(snap.job_fraction, text=text.job)
    if st.button("Stop training", icon=":material/stop:", key="draw_stop_job"):
        job.stop()
        st.toast("Stopping after this batch…")


def offer_first_model() -> None:
    plan = predict.first_model_plan(ds)
    st.info(
        f"There is no trained model for **{inert(ds.title)}** yet, so there is nothing to ask. Train the lecture "
        "preset now — "
        f"{plan.words} on this server (longer while classmates are training) — and this page will use it. "
        "Or design and train your own on the Architecture and Training pages.",
        icon=":material/lightbulb:",
    )
    if st.button(f"Train the lecture preset on {inert(ds.title)}", type="primary", icon=":material/play_arrow:",
                 key="draw_train_fast"):
        try:
            job = registry.submit(plan.spec, ds, plan.hyper, owner=owner, title=plan.title)
        except UserError as err:
            session.show_error(err)
        else:
            session.set_current_job(job)
            st.rerun()
    if any(s.path == "app_pages/training.py" for s in session.existing_stages()):
        st.page_link("app_pages/training.py", label="Go to the Training page", icon=":material/model_training:")


job = session.current_job()
if not my_runs:
    if job is not None and job.state.active:
        job_progress()
    else:
        if job is not None and job.snapshot().state is progress.JobState.FAILED:
            st.error(job.snapshot().message, icon=":material/error:")
        offer_first_model()
    st.stop()


# --- which model ------------------------------------------------------------------------------------
by_id = {r.id: r for r in my_runs}
if ss.get("draw_latest_seen") != my_runs[0].id or ss.get("draw_run_id") not in by_id:
    # A new run appeared (or the chosen one was deleted): show the newest, as the student expects.
    ss.draw_latest_seen = my_runs[0].id
    ss.draw_run_id = my_runs[0].id
model_col, source_col = st.columns(2)
run_labels = run_comparison.run_labels(my_runs)  # what tells these runs apart
model_col.selectbox("Model", list(by_id), **session.bind("draw_run_id"), format_func=run_labels.get,
                    help="Your most recent run for this dataset is chosen for you; pick any other to compare.")
run = by_id[ss.draw_run_id]
try:
    with st.spinner("Loading the model…"):
        predictor = predict.predictor_for(run, class_names=ds.class_names)
except UserError as err:
    session.show_error(err)
    st.stop()

input_shape = tuple(int(s) for s in predictor.input_shape)
if input_shape != tuple(ds.image_shape):
    st.error(f"This run's model takes {format_shape(input_shape)} images but {inert(ds.title)} has "
             f"{format_shape(ds.image_shape)}: choose another run.", icon=":material/error:")
    st.stop()
draws = drawing.uses_drawing(ds.name, input_shape, ds.class_names)
sources = (["Draw", "A test digit", "Upload a picture"] if draws else ["A test image", "Upload a picture"])
with source_col:
    # The page owns its choices (session.bind): a visit to another page keeps them.
    session.owned_choice("draw_source", sources, sources[0])
    source = st.segmented_control("Image", sources, **session.bind("draw_source")) or sources[0]


# --- the canvas: two workarounds for streamlit-drawable-canvas 0.13 --------------------------------
CANVAS_COMPONENT = "streamlit-drawable-canvas.streamlit_drawable_canvas"
# The component's toolbar floats over the canvas's top-right corner at opacity 0 and slides up only
# 0.1–0.2 s after the pointer enters: a stroke that starts in the top ~30 px of the right half before
# then presses the invisible toolbar and is never drawn. Its Reset and Undo are what our Clear and Undo
# press (below), so the toolbar itself is not needed.
HIDE_TOOLBAR = "\n.dc-toolbar { display: none !important; }\n"
BUTTONS_HTML = """<div class="cnnlab-canvas-buttons">
<button type="button" data-canvas-action="Reset canvas &amp; history" data-name="clear">🗑 Clear</button>
<button type="button" data-canvas-action="Undo" data-name="undo">↶ Undo</button></div>"""
BUTTONS_CSS = """
.cnnlab-canvas-buttons { display: flex; gap: 0.5rem; }
.cnnlab-canvas-buttons button {
  font: inherit; font-size: 0.95rem; padding: 0.3rem 0.9rem; cursor: pointer;
  color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); border-radius: var(--st-button-radius, 0.5rem);
}
.cnnlab-canvas-buttons button:hover {
  border-color: var(--st-primary-color, #ff4b4b); color: var(--st-primary-color, #ff4b4b);
}
"""
# Clear and Undo act in the browser, on the canvas that is there, at once: the component resets (or
# steps back) and sends its new drawing itself, so a stroke drawn right after Clear lands on the same,
# already empty canvas. Should a later version of the component rename its buttons, the press is
# reported back and the page falls back to a new canvas key. The same script presses the component's
# "Update the app" button at pen up, which saves the 200 ms the component waits before sending a stroke.
BUTTONS_JS = """
export default function (component) {
  const { parentElement, setTriggerValue } = component;
  const buttonsOf = (label) => [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')]
    .map((host) => host.shadowRoot && host.shadowRoot.querySelector(`.dc-toolbar button[aria-label="${label}"]`))
    .filter(Boolean);
  const press = (event) => {
    const button = event.target.closest("button[data-canvas-action]");
    if (!button) return;
    const targets = buttonsOf(button.dataset.canvasAction);
    for (const target of targets) if (!target.disabled) target.click();
    if (!targets.length) setTriggerValue("fallback", button.dataset.name);
  };
  // Pen up on the canvas: send the drawing now, not after the component's 200 ms wait for more. Pressed
  // in a later task, so the canvas has finished the stroke (its own pen-up handlers run in this event).
  let drawing = false;
  const onCanvas = (event) => event.composedPath().some((el) => el.classList && el.classList.contains("upper-canvas"));
  const down = (event) => { drawing = onCanvas(event); };
  const up = () => {
    if (!drawing) return;
    drawing = false;
    setTimeout(() => buttonsOf("Update the app with this drawing").forEach((b) => b.click()), 0);
  };
  const listeners = [["mousedown", down], ["touchstart", down], ["mouseup", up], ["touchend", up]];
  // Streamlit calls this again on every rerun without the previous cleanup: one set of listeners at a time.
  if (window.__cnnlabCanvas) window.__cnnlabCanvas();
  parentElement.addEventListener("click", press);
  for (const [type, fn] of listeners) window.addEventListener(type, fn, true);
  const cleanup = () => {
    parentElement.removeEventListener("click", press);
    for (const [type, fn] of listeners) window.removeEventListener(type, fn, true);
    if (window.__cnnlabCanvas === cleanup) delete window.__cnnlabCanvas;
  };
  window.__cnnlabCanvas = cleanup;
  return cleanup;
}
"""


@st.cache_resource(show_spinner=False)
def _canvas_css() -> str | None:
    """The component's own stylesheet (it is replaced whole when the component is registered again)."""
    try:
        build = resources.files("streamlit_drawable_canvas") / "frontend" / "build"
        return next(p for p in build.iterdir() if p.name.endswith(".css")).read_text(encoding="utf-8")
    except (OSError, StopIteration, ModuleNotFoundError):
        return None


def canvas_tools():
    """Register the canvas without its toolbar, and our Clear/Undo buttons; the buttons' mount command,
    or None when the component's files are not where 0.13 keeps them (then its own toolbar stays)."""
    from streamlit_drawable_canvas import (
        st_canvas,  # registers the component as shipped, once per process
    )

    css = _canvas_css()
    if css is None:
        return st_canvas, None
    try:
        st.components.v2.component(CANVAS_COMPONENT, js="index-*.js", css=css + HIDE_TOOLBAR,
                                   html='<div class="canvas-root"></div>', isolate_styles=True)
    except st.errors.StreamlitAPIException:
        return st_canvas, None
    buttons = st.components.v2.component("cnnlab.canvas_buttons", html=BUTTONS_HTML, css=BUTTONS_CSS,
                                         js=BUTTONS_JS, isolate_styles=False)
    return st_canvas, buttons


# --- pieces of the result ------------------------------------------------------------------------
def show_steps(steps: tuple[drawing.Step, ...], heading: str) -> None:
    st.markdown(f"**{heading}**")
    # A fixed grid, so each step keeps the same size whether there are 1, 3 or 6 of them.
    cols = st.columns(max(6, len(steps)))
    for col, step in zip(cols, steps, strict=False):
        with col:
            st.image(drawing.enlarge(step.image, STEP_SIZE), caption=f"{step.title} — {step.caption}",
                     width=STEP_SIZE, output_format="PNG")


def show_prediction(prepared: drawing.PreparedImage, prediction: predict.Prediction,
                    true_label: str | None = None, strokes: int | None = None) -> None:
    """The answer first (on a phone it sits right under the canvas), then what the model saw and every class."""
    # one row on a phone too (columns would stack): the answer stays right under the canvas
    with st.container(horizontal=True, key="draw_answer"):
        st.metric("Prediction", prediction.label, width="stretch")
        st.metric("Confidence", f"{prediction.confidence:.1%}", width="stretch")
    if true_label is not None:
        if true_label == prediction.label:
            st.success(f"Right: this test image is {drawing.article(true_label)} **{inert(true_label)}**.",
                       icon=":material/check_circle:")
        else:
            st.error(f"Wrong: this test image is {drawing.article(true_label)} **{inert(true_label)}**.",
                     icon=":material/cancel:")
    if prediction.uncertain:
        second, p2 = prediction.top(2)[1]
        st.warning(
            f"The model is unsure: its best guess has only {prediction.confidence:.0%} "
            f"(next: {second} at {p2:.0%}). "
            + ("Draw the digit larger and clearer, or train a better model."
               if draws else "Pictures unlike the training images confuse it; try another."),
            icon=":material/help:",
        )
    seen = "What the model sees" + ("" if strokes is None else f" · {strokes} stroke{'s' * (strokes != 1)}")
    st.image(drawing.enlarge(prepared.display, SEEN), caption=seen, width=SEEN, output_format="PNG")
    st.plotly_chart(charts.probability_figure(prediction.probabilities, prediction.class_names),
                    key="draw_probabilities")


def show_preparation(prepared: drawing.PreparedImage, prediction: predict.Prediction, raw=None) -> None:
    if len(prepared.steps) > 1:
        show_steps(prepared.steps, "How the image was prepared")
    st.caption(prepared.note)
    if raw is None or prepared.mode != "mnist":
        return
    naive = drawing.prepare_drawing(raw, mode="naive")
    other = predictor.predict(naive.x)
    verdict = "the same answer" if other.label == prediction.label else "a different answer"
    # The first steps (the drawing, its ink) are the same as above: show only what differs.
    show_steps(naive.steps[2:], f"For comparison, the naive way — shrink the whole canvas: the model says "
                                f"{inert(other.label)} ({other.confidence:.0%}), {verdict}")
    st.caption("Shrunk whole, a digit keeps its size and place on the canvas; MNIST's digits were all "
               "20 pixels tall and centred, so the model never saw anything like it.")


def show_why(prepared: drawing.PreparedImage, prediction: predict.Prediction) -> None:
    names = list(prediction.class_names)
    options = ["its answer", *names]
    # The page owns the class to explain (session.bind): a visit to another page keeps it.
    session.owned_choice("draw_why_class", options, "its answer")
    pick = st.segmented_control(
        "Explain", options, **session.bind("draw_why_class"),
        help="Its answer, or any class: “why not 7?” shows where the model would look for a 7.") or "its answer"
    k = prediction.index if pick == "its answer" else names.index(pick)
    smap = predictor.saliency(prepared.x, k)
    left, right = st.columns(2)
    with left:
        st.image(drawing.enlarge(explain.overlay(prepared.x, smap.heat), SEEN * 2 // 2 + 84),
                 caption=f"Evidence for {names[k]} ({prediction.probabilities[k]:.0%})", width=252)
    with right:
        st.markdown(explain.saliency_sentence(smap, names, prediction.index))
        st.caption("Grad-CAM: the last convolution layer's maps, each position weighted by how much it "
                   "raises the class's score; the result is scaled up to 28×28. Pick another class to see "
                   "what in the drawing speaks for it — often nothing, or a single stroke.")


def _pick_cell(shape: tuple[int, int]) -> None:
    """A click on the feature map: its cell becomes the position the arithmetic is shown for."""
    event = ss.get("draw_conv_map")
    cell = charts.picked_cell(event.selection.points if event else [], shape)
    if cell is not None:
        ss.draw_conv_row, ss.draw_conv_col = cell


def show_convolution(prepared: drawing.PreparedImage) -> None:
    model = predictor.model
    convs = explain.conv_layers(model)
    st.markdown("**Warm-up, as in the lessons:** slide b = [1, 2, 3] along a = [2, 5, 8, 4, 7, 9] and take "
                "the dot product at each place:")
    warm = explain.conv1d()
    st.markdown("  \n".join(f"position {s.position}: {s.formula}" for s in warm)
                + f"  \n→ [{', '.join(f'{s.total:g}' for s in warm)}]. A 2-D filter does the same over a "
                  "k×k window (Keras does not flip the filter).")
    if not convs:
        st.info("This model has no Conv2D layer, so there is no convolution to show.", icon=":material/info:")
        return
    first = convs[0]
    maps = predictor.feature_maps(prepared.x)
    fm = maps[0].activations
    h, w, c = fm.shape
    st.markdown(f"**{inert(first.name)}'s {c} learned filters** (bright = positive weight, dark = negative):")
    filters = explain.filter_images(model, 0)
    st.image([drawing.enlarge(f, 40) for f in filters[:32]], caption=[f"#{i + 1}" for i in range(min(32, c))])
    # The page owns filter and position (session.bind): a click on the map and the sliders both edit them.
    ss["draw_conv_channel"] = min(int(session.owned("draw_conv_channel", 1)), c)
    if (ss.get("draw_conv_row") is None or ss.draw_conv_row >= h
            or ss.get("draw_conv_col") is None or ss.draw_conv_col >= w):
        r, col = np.unravel_index(int(np.argmax(fm[..., ss.draw_conv_channel - 1])), (h, w))
        ss.draw_conv_row, ss.draw_conv_col = int(r), int(col)
    pick = st.columns(3)
    channel = pick[0].number_input("Filter", 1, c, **session.bind("draw_conv_channel")) - 1
    row = pick[1].slider("Row", 0, h - 1, **session.bind("draw_conv_row"))
    col = pick[2].slider("Column", 0, w - 1, **session.bind("draw_conv_col"))
    st.caption("Click a cell of the feature map (or move the sliders) to see how its number is computed.")
    a = explain.conv_arithmetic(model, prepared.x, row, col, channel, layer=0)
    kh, kw, cin = a.kernel.shape
    pictures = st.columns(2)
    with pictures[0]:
        st.image(explain.mark(prepared.display, a.origin, (kh, kw), 6),
                 caption=f"The input: the {kh}×{kw} window at row {a.origin[0]}, column {a.origin[1]}", width=SEEN)
    with pictures[1]:
        # A click sets the page's row and column (the sliders follow); the sliders move the frame.
        st.plotly_chart(charts.feature_map_figure(fm[..., channel], (row, col), size=SEEN + 84),
                        key="draw_conv_map", on_select=lambda: _pick_cell((h, w)), selection_mode="points",
                        config={"displayModeBar": False}, width="content")
        st.caption(f"Filter #{channel + 1}'s feature map: the number at ({row}, {col}), framed")
    for ch in range(cin):
        grids = st.columns(3)
        suffix = f" (input channel {ch + 1})" if cin > 1 else ""
        panels = (("Input window", a.window[..., ch]), ("× filter weights", a.kernel[..., ch]),
                  ("= products", a.products[..., ch]))
        for g, (title, values) in zip(grids, panels, strict=True):
            g.markdown(f"**{inert(title)}**{suffix}\n\n" + explain.grid_markdown(values, a.padding_mask))
    lines = [f"Sum of the {kh * kw * cin} products: **{a.total:.4f}**"]
    lines += [f"{s.title}: {s.formula}" for s in a.steps]
    st.markdown("  \n".join(lines))
    shown = float(fm[row, col, channel])
    st.success(f"= **{a.value:.4f}**, the number filter #{channel + 1}'s feature map holds at ({row}, {col}) "
               f"(the model computed {shown:.4f}).", icon=":material/calculate:")
    for deeper in convs[1:2]:
        st.caption(explain.deeper_layer_sentence(model, deeper.name))


def show_feature_maps(x: np.ndarray) -> None:
    maps = predictor.feature_maps(x)
    st.subheader("What each convolution layer sees")
    if not maps:
        st.info("This model has no Conv2D layer, so there are no feature maps to show.", icon=":material/info:")
        return
    most = max(m.channels for m in maps)
    top = min(most, 64)
    # The page owns how many channels to show (session.bind), kept within what this model has.
    st.session_state["draw_channels"] = min(max(1, int(session.owned("draw_channels", 8))), top)
    n = most if most == 1 else st.slider(
        "Channels to show per layer", 1, top, **session.bind("draw_channels"),
        help="Each channel is one filter's response: bright where the filter's pattern occurs.")
    st.caption("Each tile is one filter's output for this image, scaled to its own maximum: bright means the "
               "filter's pattern is there. Early layers find edges and strokes; later, smaller maps "
               "combine them into parts of shapes.")
    for m in maps:
        st.markdown(f"**{inert(m.title)}** — {format_shape(m.activations.shape[:2])}, "
                    f"{m.channels} channels")
        tiles = m.tiles(n)
        st.image([drawing.enlarge(t, TILE) for t in tiles], caption=[f"#{i + 1}" for i in range(len(tiles))])


def look_inside(prepared: drawing.PreparedImage, prediction: predict.Prediction, raw=None) -> None:
    """One view at a time, on demand: each stroke recomputes only the one that is open."""
    session.owned("draw_view", VIEWS[0])
    view = st.segmented_control("Look inside", VIEWS, **session.bind("draw_view"))
    if view == "Why this answer":
        show_why(prepared, prediction)
    elif view == "How it was prepared":
        show_preparation(prepared, prediction, raw)
    elif view == "The convolution":
        show_convolution(prepared)
    elif view == "Feature maps":
        show_feature_maps(prepared.x)


def answer(prepared: drawing.PreparedImage, result_col, true_label: str | None = None, raw=None,
           strokes: int | None = None) -> None:
    prediction = predictor.predict(prepared.x)
    with result_col:
        show_prediction(prepared, prediction, true_label, strokes)
    look_inside(prepared, prediction, raw)


# --- the input --------------------------------------------------------------------------------------
@st.fragment
def draw_and_answer() -> None:
    """The canvas and everything that follows a stroke: a stroke reruns this, not the page."""
    st_canvas, buttons = canvas_tools()
    ss.setdefault("draw_canvas_gen", 0)
    session.owned("draw_pen", 20)

    def _new_canvas() -> None:
        ss.draw_canvas_gen += 1  # only when the component's own buttons cannot be pressed

    input_col, result_col = st.columns(2)
    with input_col:
        canvas = st_canvas(stroke_width=int(ss.draw_pen), stroke_color="#000000", background_color="#FFFFFF",
                           width=CANVAS, height=CANVAS, drawing_mode="freedraw", return_image_data=True,
                           key=f"draw_canvas_{ss.draw_canvas_gen}")
        # one row on a phone too (columns would stack), so the answer sits right under the canvas
        with st.container(horizontal=True, vertical_alignment="center", key="draw_tools"):
            if buttons is not None:
                buttons(key="draw_canvas_buttons", on_fallback_change=_new_canvas)
            else:
                st.button("Clear", icon=":material/delete:", on_click=_new_canvas, key="draw_clear")
            with st.popover("Pen width", icon=":material/brush:"):
                st.slider("Pen width", 5, 50, **session.bind("draw_pen"), label_visibility="collapsed",
                          help="Any width works: the strokes are evened out to MNIST's pen before the model "
                          "sees them.")
        with st.container(key="draw_hint"):  # app.css: not on a phone, where it would push the answer down
            st.caption("Draw one digit 0–9 with the mouse or a finger, as large or small as you like.")
    raw = canvas.image_data
    try:
        prepared = drawing.prepare_drawing(raw)
    except DrawingError as err:
        with result_col:
            st.info(str(err), icon=":material/draw:")
        return
    # How many strokes this answer is for: the student (and the browser test) can see none went missing.
    strokes = len((canvas.json_data or {}).get("objects") or [])
    answer(prepared, result_col, raw=raw, strokes=strokes)


if source == "Draw":
    draw_and_answer()

elif source in ("A test digit", "A test image"):
    input_col, result_col = st.columns(2)
    n_test = len(ds.x_test)
    if not 0 <= session.owned("draw_test_index", 0) < n_test:
        ss["draw_test_index"] = 0

    def _random() -> None:
        ss.draw_test_index = int(np.random.default_rng().integers(n_test))

    with input_col:
        st.number_input(f"Test image (0 – {n_test - 1})", 0, n_test - 1, **session.bind("draw_test_index"))
        st.button("Another random image", icon=":material/shuffle:", on_click=_random, key="draw_random")
        i = int(ss.draw_test_index)
        prepared, true_label = drawing.prepare_test_image(ds, i)
        st.image(drawing.enlarge(prepared.display, SEEN),
                 caption=f"Test image {i}: {drawing.article(true_label)} {true_label}")
    answer(prepared, result_col, true_label=true_label)

else:
    input_col, result_col = st.columns(2)
    with input_col:
        upload = st.file_uploader(
            "A picture (PNG, JPEG, …) of any size", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
            key="draw_upload",
            help=("A photo or scan of one handwritten digit, prepared like a drawing." if draws else
                  f"It is converted to {inert(ds.title)}'s {format_shape(ds.image_shape)} images."))
    if upload is None:
        with result_col:
            st.info("Choose a picture to see what the model makes of it.", icon=":material/upload:")
    else:
        try:
            picture = drawing.read_image(upload.getvalue())
            prepared = drawing.prepare_for(picture, ds.name, input_shape, ds.class_names)
        except DrawingError as err:
            with result_col:
                session.show_error(err)
        else:
            answer(prepared, result_col, raw=picture if prepared.mode == "mnist" else None)
