"""Stage 5: draw a digit (or pick a picture) and watch the student's own model read it — and see why.

The drawing is prepared the way MNIST was (cnnkit.drawing); the model answers through a
compiled single-image call (cnnkit.predict) with every class's probability. Below, on
demand: the preparation step by step beside the naive shrink most apps use, where the
evidence for any class lies (Grad-CAM, cnnkit.explain), one convolution worked out by
hand on the student's own filters, and the feature maps. The model is one of the student's runs or the
model file they brought from a lab (webapp/uploaded_model.py, shared with the Evaluation page).
Fashion-MNIST and CIFAR-10 models get a test-image picker and an upload instead of the canvas. With no
model yet, the page offers to train the lecture preset in the background.

The canvas and the answer live in one fragment: a stroke reruns only them (and the view
that is open), never the whole page. The canvas itself, with its workarounds for
streamlit-drawable-canvas 0.13, is webapp/canvas.py; the job panel is webapp/job_panel.py.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnnkit import challenge, charts, drawing, explain, predict, progress, runs
from cnnkit.errors import DrawingError, UserError
from cnnkit.jobs import start
from cnnkit.plain_text import inert, inert_message
from cnnkit.run_labels import run_labels as label_runs
from cnnkit.spec import format_shape
from webapp import (
    browser_identity,
    canvas,
    job_panel,
    stages,
    student,
    training_jobs,
    uploaded_model,
    user_errors,
    widget_state,
)
from webapp.lecturer import current_challenge

CANVAS = 280  # pixels; ten times MNIST's 28
STEP_SIZE = 112  # each preparation step is shown this many pixels wide
TILE = 72  # feature-map tiles
SEEN = 168  # "what the model sees": 28×28 enlarged six times
FILE = "file"  # the model picker's entry for the student's uploaded model (webapp/uploaded_model.py)
def keyboard_hint(test_option: str) -> str:
    return f"No mouse or touch screen? **{test_option}** and **Upload a picture** work with the keyboard."
VIEWS = ["Why this answer", "How it was prepared", "The convolution", "Feature maps"]

st.title("5 · Draw & predict")
st.caption("Give the model an image it has never seen, read its answer — then look inside: why it answered, "
           "and how its convolutions compute.")

ss = st.session_state
ds = student.dataset()
registry = training_jobs.job_registry()
owner = browser_identity.owner_id()
my_runs = runs.list_runs(owner=owner, dataset_name=ds.name)
if (damaged := runs.damaged_note()) is not None:
    st.warning(damaged, icon=":material/folder_off:")


# --- no model yet: offer the lecture preset ------------------------------------------------------
def offer_first_model() -> None:
    plan = predict.first_model_plan(ds, start.class_limits())   # within the class limits, as Start will train it
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
            # the one Start path: the class limits apply here as on the Training page
            started = start.start_training(plan.spec, ds, plan.asked, owner=owner, title=plan.title,
                                           registry=registry)
        except UserError as err:
            user_errors.show_error(err)
        else:
            training_jobs.set_current_job(started.job)
            st.rerun()
    if any(s.path == "app_pages/training.py" for s in stages.existing_stages()):
        st.page_link("app_pages/training.py", label="Go to the Training page", icon=":material/model_training:")


job = training_jobs.current_job()
if not my_runs and uploaded_model.has_kept():
    ss.draw_run_id = FILE  # the model file brought on the Evaluation page answers here too
if not my_runs and ss.get("draw_run_id") != FILE:
    if job is not None and job.state.active:
        job_panel.show(brief=True, stop_key="draw_stop_job", stop_label="Stop training")
    else:
        if job is not None and job.snapshot().state is progress.JobState.FAILED:
            st.error(job.snapshot().message, icon=":material/error:")
        offer_first_model()
    st.button("Or use a model you saved in a lab", icon=":material/upload_file:", key="draw_use_file",
              on_click=lambda: ss.update(draw_run_id=FILE))
    st.stop()


# --- which model ------------------------------------------------------------------------------------
by_id = {r.id: r for r in my_runs}
if my_runs and (ss.get("draw_latest_seen") != my_runs[0].id or ss.get("draw_run_id") not in (*by_id, FILE)):
    # A new run appeared (or the chosen one was deleted): show the newest, as the student expects.
    ss.draw_latest_seen = my_runs[0].id
    ss.draw_run_id = my_runs[0].id
model_col, source_col = st.columns(2)
run_labels = {**label_runs(my_runs), FILE: "A model file (.keras, a lab's .h5/.h5py, or .json + weights)"}
with model_col:
    st.selectbox("Model", [*by_id, FILE], **widget_state.bind("draw_run_id"), format_func=run_labels.get,
                 help="Your most recent run for this dataset is chosen for you; pick any other to compare, or a "
                 "model file you saved in a lab.")
    try:
        if ss.draw_run_id == FILE:
            kept = uploaded_model.choose(ds, key="draw_model_upload")
            if kept is None:
                st.info("Upload the model you saved in a lab: it is kept while you use the app, on the "
                        "Evaluation page too.", icon=":material/upload_file:")
                st.stop()
            predictor = predict.predictor_for_model(kept.model, kept.digest, class_names=ds.class_names)
        else:
            with st.spinner("Loading the model…"):
                predictor = predict.predictor_for(by_id[ss.draw_run_id], class_names=ds.class_names)
    except UserError as err:
        user_errors.show_error(err)
        st.stop()

input_shape = tuple(int(s) for s in predictor.input_shape)
if input_shape != tuple(ds.image_shape):
    st.error(f"This run's model takes {format_shape(input_shape)} images but {inert(ds.title)} has "
             f"{format_shape(ds.image_shape)}: choose another run.", icon=":material/error:")
    st.stop()
draws = drawing.uses_drawing(ds.name, input_shape, ds.class_names)
drawn = drawing.drawn_noun(ds.class_names)          # "digit", "circle, square or triangle", "drawing"
test_option = "A test digit" if drawn == "digit" else "A test drawing"
sources = (["Draw", test_option, "Upload a picture"] if draws else ["A test image", "Upload a picture"])
with source_col:
    # The page owns its choices (widget_state.bind): a visit to another page keeps them.
    widget_state.owned_choice("draw_source", sources, sources[0])
    source = st.segmented_control("Image", sources, **widget_state.bind("draw_source", keep=True),
                                  help=keyboard_hint(test_option) if draws else None) or sources[0]
    if draws and source == "Draw":   # drawing needs a pointer: say what the keyboard reaches instead
        with st.container(key="draw_keyboard_hint"):   # app.css: not on a phone (a touch screen draws)
            st.caption(keyboard_hint(test_option))


# --- pieces of the result ------------------------------------------------------------------------
def show_steps(steps: tuple[drawing.Step, ...], heading: str) -> None:
    st.markdown(f"**{heading}**")
    # A fixed grid, so each step keeps the same size whether there are 1, 3 or 6 of them.
    cols = st.columns(max(6, len(steps)))
    for col, step in zip(cols, steps, strict=False):
        with col:
            st.image(drawing.enlarge(step.image, STEP_SIZE), caption=f"{step.title} — {step.caption}",
                     width=STEP_SIZE, output_format="PNG", alt=f"{step.title}: {step.caption}")


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
            f"(next: {inert(second)} at {p2:.0%}). "
            + (f"Draw the {'digit' if drawn == 'digit' else 'drawing'} larger and clearer, or train a better model."
               if draws else "Pictures unlike the training images confuse it; try another."),
            icon=":material/help:",
        )
    seen = "What the model sees" + ("" if strokes is None else f" · {strokes} stroke{'s' * (strokes != 1)}")
    st.image(drawing.enlarge(prepared.display, SEEN), caption=seen, width=SEEN, output_format="PNG",
             alt=f"{seen}: the prepared image, {format_shape(prepared.x.shape[:2])} pixels, enlarged")
    st.plotly_chart(charts.probability_figure(prediction.probabilities, prediction.class_names),
                    key="draw_probabilities")
    # the chart in words (a chart has no alt text): the three most likely classes
    st.caption("Each class's probability; the most likely: "
               + ", ".join(f"{inert(name)} {p:.0%}" for name, p in prediction.top(3)) + ".")


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
    # The page owns the class to explain (widget_state.bind): a visit to another page keeps it.
    widget_state.owned_choice("draw_why_class", options, "its answer")
    pick = st.segmented_control(
        "Explain", options, **widget_state.bind("draw_why_class", keep=True),
        help="Its answer, or any class: “why not 7?” shows where the model would look for a 7.") or "its answer"
    k = prediction.index if pick == "its answer" else names.index(pick)
    smap = predictor.saliency(prepared.x, k)
    left, right = st.columns(2)
    with left:
        st.image(drawing.enlarge(explain.overlay(prepared.x, smap.heat), SEEN * 2 // 2 + 84),
                 caption=f"Evidence for {names[k]} ({prediction.probabilities[k]:.0%})", width=252,
                 alt=f"The image with the evidence for {names[k]} laid over it as a heat map: bright where it is")
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
    st.image([drawing.enlarge(f, 40) for f in filters[:32]], caption=[f"#{i + 1}" for i in range(min(32, c))],
             alt=[f"Filter #{i + 1}'s weights as grey levels" for i in range(min(32, c))])
    # The page owns filter and position (widget_state.bind): a click on the map and the sliders both edit them.
    ss["draw_conv_channel"] = min(int(widget_state.owned("draw_conv_channel", 1)), c)
    if (ss.get("draw_conv_row") is None or ss.draw_conv_row >= h
            or ss.get("draw_conv_col") is None or ss.draw_conv_col >= w):
        r, col = np.unravel_index(int(np.argmax(fm[..., ss.draw_conv_channel - 1])), (h, w))
        ss.draw_conv_row, ss.draw_conv_col = int(r), int(col)
    pick = st.columns(3)
    channel = pick[0].number_input("Filter", 1, c, **widget_state.bind("draw_conv_channel")) - 1
    row = pick[1].slider("Row", 0, h - 1, **widget_state.bind("draw_conv_row"))
    col = pick[2].slider("Column", 0, w - 1, **widget_state.bind("draw_conv_col"))
    st.caption("Click a cell of the feature map (or move the sliders) to see how its number is computed.")
    a = explain.conv_arithmetic(model, prepared.x, row, col, channel, layer=0)
    kh, kw, cin = a.kernel.shape
    pictures = st.columns(2)
    with pictures[0]:
        st.image(explain.mark(prepared.display, a.origin, (kh, kw), 6),
                 caption=a.where(), width=SEEN, alt=f"The image with the input window framed: {a.where()}")
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
    lines = [a.sum_line()]
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
    # The page owns how many channels to show (widget_state.bind), kept within what this model has.
    st.session_state["draw_channels"] = min(max(1, int(widget_state.owned("draw_channels", 8))), top)
    n = most if most == 1 else st.slider(
        "Channels to show per layer", 1, top, **widget_state.bind("draw_channels"),
        help="Each channel is one filter's response: bright where the filter's pattern occurs.")
    st.caption("Each tile is one filter's output for this image, scaled to its own maximum: bright means the "
               "filter's pattern is there. Early layers find edges and strokes; later, smaller maps "
               "combine them into parts of shapes.")
    for m in maps:
        st.markdown(f"**{inert(m.title)}** — {format_shape(m.activations.shape[:2])}, "
                    f"{m.channels} channels")
        tiles = m.tiles(n)
        st.image([drawing.enlarge(t, TILE) for t in tiles], caption=[f"#{i + 1}" for i in range(len(tiles))],
                 alt=[f"{m.title}, channel {i + 1}: its feature map for this image" for i in range(len(tiles))])


def look_inside(prepared: drawing.PreparedImage, prediction: predict.Prediction, raw=None) -> None:
    """One view at a time, on demand: each stroke recomputes only the one that is open."""
    widget_state.owned("draw_view", VIEWS[0])
    view = st.segmented_control("Look inside", VIEWS, **widget_state.bind("draw_view", keep=True))
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
    input_col, result_col = st.columns(2)
    with input_col:
        sketch = canvas.draw(CANVAS, hint=canvas.DIGIT_HINT if drawn == "digit" else inert_message(
            f"Draw one {drawn} with the mouse or a finger, as large or small as you like."))
    try:
        prepared = drawing.prepare_drawing(sketch.image, what=drawn)
    except DrawingError as err:
        with result_col:
            st.info(str(err), icon=":material/draw:")
        return
    answer(prepared, result_col, raw=sketch.image, strokes=sketch.strokes)


if source == "Draw":
    draw_and_answer()

elif source in ("A test digit", "A test drawing", "A test image"):
    input_col, result_col = st.columns(2)
    test_ds = challenge.visible_dataset(ds, current_challenge())  # never a hidden challenge image
    n_test = len(test_ds.x_test)
    if not 0 <= widget_state.owned("draw_test_index", 0) < n_test:
        ss["draw_test_index"] = 0

    def _random() -> None:
        ss.draw_test_index = int(np.random.default_rng().integers(n_test))

    with input_col:
        st.number_input(f"Test image (0 – {n_test - 1})", 0, n_test - 1, **widget_state.bind("draw_test_index"))
        st.button("Another random image", icon=":material/shuffle:", on_click=_random, key="draw_random")
        i = int(ss.draw_test_index)
        prepared, true_label = drawing.prepare_test_image(test_ds, i)
        st.image(drawing.enlarge(prepared.display, SEEN),
                 caption=f"Test image {i}: {drawing.article(true_label)} {true_label}",
                 alt=f"Test image {i}: {drawing.article(true_label)} {true_label}")
    answer(prepared, result_col, true_label=true_label)

else:
    input_col, result_col = st.columns(2)
    with input_col:
        upload = st.file_uploader(
            "A picture (PNG, JPEG, …) of any size", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
            key="draw_upload",
            help=(inert_message(f"A photo or scan of one handwritten {drawn}, prepared like a drawing.") if draws else
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
                user_errors.show_error(err)
        else:
            answer(prepared, result_col, raw=picture if prepared.mode == "mnist" else None)
