"""Stage 5: draw a digit (or pick a picture) and watch the student's own model read it.

The drawing is prepared the way MNIST was (cnnkit.drawing), every step shown beside
the naive shrink-to-28×28 that most apps use; the model answers through a compiled
single-image call (cnnkit.predict), with every class's probability and the feature
maps of each convolution layer. Fashion-MNIST and CIFAR-10 models get a test-image
picker and an upload instead of the canvas. With no model yet, the page offers to
train the fast preset in the background.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import session
from cnnkit import charts, datasets, drawing, predict, runs, training
from cnnkit.errors import DrawingError, UserError

CANVAS = 280  # pixels; ten times MNIST's 28
STEP_SIZE = 112  # each preparation step is shown this many pixels wide
TILE = 72  # feature-map tiles

st.title("5 · Draw & predict")
st.caption(
    "The last step of every lesson: give the model an image it has never seen and read its answer. "
    "A drawing is prepared the way MNIST's digits were — cropped, scaled into a 20-pixel box, centred by "
    "its centre of mass in 28×28 — and you can see every step."
)

ss = st.session_state
ds = session.dataset()
registry = session.job_registry()
owner = session.owner_id()
my_runs = runs.list_runs(owner=owner, dataset=ds.name)
if (damaged := runs.damaged_note()) is not None:
    st.warning(damaged, icon=":material/folder_off:")


# --- no model yet: offer the fast preset ------------------------------------------------------
@st.fragment(run_every=1.0)
def job_progress() -> None:
    job = session.current_job()
    if job is None or not job.state.active:
        st.rerun()  # it has finished: the whole page redraws and finds the new run
    snap = job.snapshot()
    text = training.describe_progress(snap, registry.max_jobs)
    info = datasets.CATALOGUE.get(snap.dataset)
    st.info(f"**{snap.title}** is training on {info.title if info else snap.dataset}. {text.status} This page "
            "uses the model as soon as it is saved; you can visit other pages meanwhile.",
            icon=":material/model_training:")
    if snap.state is not training.JobState.QUEUED:
        st.progress(snap.epoch_fraction, text=text.epoch)
        st.progress(snap.job_fraction, text=text.job)
    if st.button("Stop training", icon=":material/stop:", key="draw_stop_job"):
        job.stop()
        st.toast("Stopping after this batch…")


def offer_first_model() -> None:
    plan = predict.first_model_plan(ds)
    st.info(
        f"There is no trained model for **{ds.title}** yet, so there is nothing to ask. Train the fast preset now — "
        f"{plan.words} on this server (longer while classmates are training) — and this page will use it. "
        "Or design and train your own on the Architecture and Training pages.",
        icon=":material/lightbulb:",
    )
    if st.button(f"Train the fast preset on {ds.title}", type="primary", icon=":material/play_arrow:",
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
        if job is not None and job.snapshot().state is training.JobState.FAILED:
            st.error(job.snapshot().message, icon=":material/error:")
        offer_first_model()
    st.stop()


# --- which model ------------------------------------------------------------------------------------
by_id = {r.id: r for r in my_runs}
if ss.get("draw_latest_seen") != my_runs[0].id or ss.get("draw_run_id") not in by_id:
    # A new run appeared (or the chosen one was deleted): show the newest, as the student expects.
    ss.draw_latest_seen = my_runs[0].id
    ss.draw_run_id = my_runs[0].id
run_labels = runs.run_labels(my_runs)  # what tells these runs apart
st.selectbox("Model", list(by_id), key="draw_run_id", format_func=run_labels.get,
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
    st.error(f"This run's model takes {'×'.join(map(str, input_shape))} images but {ds.title} has "
             f"{'×'.join(map(str, ds.image_shape))}: choose another run.", icon=":material/error:")
    st.stop()
draws = drawing.uses_drawing(ds.name, input_shape)


# --- pieces of the result ------------------------------------------------------------------------
def show_steps(steps: tuple[drawing.Step, ...], heading: str) -> None:
    st.markdown(f"**{heading}**")
    # A fixed grid, so each step keeps the same size whether there are 1, 3 or 6 of them.
    cols = st.columns(max(6, len(steps)))
    for col, step in zip(cols, steps):
        with col:
            st.image(drawing.enlarge(step.image, STEP_SIZE), caption=f"{step.title} — {step.caption}",
                     width=STEP_SIZE)


def show_prediction(prediction: predict.Prediction, true_label: str | None = None) -> None:
    a, b = st.columns(2)
    a.metric("Prediction", prediction.label)
    b.metric("Confidence", f"{prediction.confidence:.1%}")
    if true_label is not None:
        if true_label == prediction.label:
            st.success(f"Right: this test image is {drawing.article(true_label)} **{true_label}**.", icon=":material/check_circle:")
        else:
            st.error(f"Wrong: this test image is {drawing.article(true_label)} **{true_label}**.", icon=":material/cancel:")
    if prediction.uncertain:
        second, p2 = prediction.top(2)[1]
        st.warning(
            f"The model is unsure: its best guess has only {prediction.confidence:.0%} "
            f"(next: {second} at {p2:.0%}). "
            + ("Draw the digit larger and clearer, or train a better model."
               if draws else "Pictures unlike the training images confuse it; try another."),
            icon=":material/help:",
        )
    st.plotly_chart(charts.probability_figure(prediction.probabilities, prediction.class_names),
                    key="draw_probabilities")


def show_feature_maps(x: np.ndarray) -> None:
    maps = predictor.feature_maps(x)
    st.subheader("What each convolution layer sees")
    if not maps:
        st.info("This model has no Conv2D layer, so there are no feature maps to show.", icon=":material/info:")
        return
    most = max(m.channels for m in maps)
    n = most if most == 1 else st.slider(
        "Channels to show per layer", 1, min(most, 64), min(8, most), key="draw_channels",
        help="Each channel is one filter's response: bright where the filter's pattern occurs.")
    st.caption("Each tile is one filter's output for this image, scaled to its own maximum: bright means the "
               "filter's pattern is there. Early layers find edges and strokes; later, smaller maps "
               "combine them into parts of shapes.")
    for m in maps:
        st.markdown(f"**{m.title}** — {m.activations.shape[0]}×{m.activations.shape[1]}, "
                    f"{m.channels} channels")
        tiles = m.tiles(n)
        st.image([drawing.enlarge(t, TILE) for t in tiles], caption=[f"#{i + 1}" for i in range(len(tiles))])


def answer(prepared: drawing.PreparedImage, true_label: str | None = None, naive: drawing.PreparedImage | None = None) -> None:
    """Everything below the input: prediction, steps, the naive comparison, feature maps."""
    prediction = predictor.predict(prepared.x)
    with result_col:
        st.image(drawing.enlarge(prepared.display, 168), caption="What the model sees")
        show_prediction(prediction, true_label)
    if len(prepared.steps) > 1:
        show_steps(prepared.steps, "How the image was prepared")
    st.caption(prepared.note)
    if naive is not None:
        other = predictor.predict(naive.x)
        verdict = "the same answer" if other.label == prediction.label else "a different answer"
        # The first steps (the drawing, its ink) are the same as above: show only what differs.
        show_steps(naive.steps[2:], f"For comparison, the naive way — shrink the whole canvas: the model says "
                                    f"{other.label} ({other.confidence:.0%}), {verdict}")
        st.caption("Shrunk whole, a digit keeps its size and place on the canvas; MNIST's digits were all "
                   "20 pixels tall and centred, so the model never saw anything like it.")
    show_feature_maps(prepared.x)


# --- the input --------------------------------------------------------------------------------------
sources = (["Draw", "A test digit", "Upload a picture"] if draws else ["A test image", "Upload a picture"])
source = st.segmented_control("Image", sources, default=sources[0], key="draw_source") or sources[0]
input_col, result_col = st.columns(2)

if source == "Draw":
    from streamlit_drawable_canvas import st_canvas

    ss.setdefault("draw_canvas_gen", 0)

    def _clear() -> None:
        # A new key gives a new, empty canvas.
        ss.draw_canvas_gen += 1

    with input_col:
        pen = st.slider("Pen width", 5, 50, 20, key="draw_pen",
                        help="Any width works: the strokes are evened out to MNIST's pen before the model sees them.")
        canvas = st_canvas(stroke_width=pen, stroke_color="#000000", background_color="#FFFFFF",
                           width=CANVAS, height=CANVAS, drawing_mode="freedraw", return_image_data=True,
                           key=f"draw_canvas_{ss.draw_canvas_gen}")
        st.button("Clear", icon=":material/delete:", on_click=_clear, key="draw_clear")
        st.caption("Draw one digit 0–9 with the mouse or a finger, as large or small as you like.")
    try:
        prepared = drawing.prepare_drawing(canvas.image_data)
        naive = drawing.prepare_drawing(canvas.image_data, mode="naive")
    except DrawingError as err:
        with result_col:
            st.info(str(err), icon=":material/draw:")
    else:
        answer(prepared, naive=naive)

elif source in ("A test digit", "A test image"):
    n_test = len(ds.x_test)
    ss.setdefault("draw_test_index", 0)

    def _random() -> None:
        ss.draw_test_index = int(np.random.default_rng().integers(n_test))

    with input_col:
        st.number_input(f"Test image (0 – {n_test - 1})", 0, n_test - 1, key="draw_test_index")
        st.button("Another random image", icon=":material/shuffle:", on_click=_random, key="draw_random")
        i = int(ss.draw_test_index)
        st.image(drawing.enlarge(datasets.to_float(ds.x_test[i]).squeeze(), 168),
                 caption=f"Test image {i}: a {ds.class_names[int(ds.y_test[i])]}")
    x = datasets.to_float(ds.x_test[i : i + 1])[0]
    prepared = drawing.PreparedImage(
        x=x, steps=(drawing.Step("Test image", x.squeeze(), "already in the dataset's shape"),),
        mode="test", note="Test images are used as they are: scaled from 0–255 to 0–1.")
    answer(prepared, true_label=ds.class_names[int(ds.y_test[i])])

else:
    with input_col:
        upload = st.file_uploader(
            "A picture (PNG, JPEG, …) of any size", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
            key="draw_upload",
            help=("A photo or scan of one handwritten digit, prepared like a drawing." if draws else
                  f"It is converted to {ds.title}'s {'×'.join(map(str, ds.image_shape))} images."))
    if upload is None:
        with result_col:
            st.info("Choose a picture to see what the model makes of it.", icon=":material/upload:")
    else:
        try:
            picture = drawing.read_image(upload.getvalue())
            prepared = drawing.prepare_for(picture, ds.name, input_shape)
        except DrawingError as err:
            with result_col:
                session.show_error(err)
        else:
            answer(prepared)
