"""Stage 1: load and explore the data, and see the preprocessing a CNN needs."""

import streamlit as st

from cnnkit import challenge, charts, datasets, exploration
from cnnkit.errors import DatasetError, UserError
from cnnkit.plain_text import inert, inert_message
from webapp import drawn_collection, lecturer, student, user_errors, widget_state

st.title("1 · Load and explore the data")


UPLOAD = "upload"  # the picker's entry for the uploaded file in use
ss = st.session_state
widget_state.owned("data.uploader_rev", 0)  # bumped to empty the uploader when the student leaves the upload


def _picked() -> None:
    name = ss["data.dataset"]
    if name == UPLOAD:
        return
    try:
        if name.startswith("drawings|"):   # a collection the class drew: "drawings|scope|id"
            _, scope, cid = name.split("|")
            student.use_collection(scope, int(cid))
        else:
            student.choose_dataset(name)
    except UserError as err:
        user_errors.flash_error("data.dataset", str(err))
    ss["data.uploader_rev"] += 1  # a catalogue dataset replaces the upload: the uploader empties too


def _uploaded() -> None:
    up = ss.get(f"data.upload{ss['data.uploader_rev']}")
    if up is None:  # the student removed the file: back to the catalogue dataset they had
        if student.upload_in_use():
            student.choose_dataset(ss.dataset_name)
        return
    try:
        student.use_upload(up.name, up.getvalue(), ss.dataset_name)
    except DatasetError as err:
        user_errors.flash_error("data.upload", str(err))
        ss["data.uploader_rev"] += 1  # the refused file leaves the uploader with its message


in_use = student.upload_in_use()
drawn = dict(drawn_collection.options())   # the class's drawn collections (or the student's own)
record = student.collection_in_use()
drawn_key = f"drawings|{record['scope']}|{record['id']}" if record else None
if drawn_key and drawn_key not in drawn:
    drawn[drawn_key] = student.dataset().title
options = list(datasets.CATALOGUE) + list(drawn) + ([UPLOAD] if in_use else [])
ss["data.dataset"] = UPLOAD if in_use else drawn_key or ss.dataset_name
pick, upload_col = st.columns([1, 1])
with pick:
    st.selectbox("Dataset", options, **widget_state.bind("data.dataset", on_change=_picked),
                 format_func=lambda n: f"Your file: {in_use}" if n == UPLOAD else drawn.get(n) or
                 datasets.CATALOGUE[n].title,
                 help="MNIST digits, Fashion-MNIST clothes or CIFAR-10 colour photos — a collection your class "
                      "drew — or the file you uploaded.")
    user_errors.show_flash_error("data.dataset")
with upload_col:
    st.file_uploader("…or use your own file (.npz in Keras's layout, or a .zip of class folders)",
                     type=["npz", "zip"], key=f"data.upload{ss['data.uploader_rev']}", on_change=_uploaded)
    user_errors.show_flash_error("data.upload")

# With a class challenge open on this dataset, its hidden test images are left out of every count and sample.
ds = challenge.visible_dataset(student.dataset(), lecturer.current_challenge())
# One line, not banners: the page's first screen shows the images.
st.caption(exploration.source_line(ds))
if exploration.notes_title(ds):  # how the file was read (0–1 or 0–255, one-hot labels…), sources skipped as damaged
    # A collection the class drew opens its notes: how it was split (by contributor or not) is the lesson.
    with st.expander(exploration.notes_title(ds), icon=":material/info:", expanded=ds.source == "collection"):
        for note in ds.notes:
            st.warning(inert_message(note), icon=":material/info:")

m1 = m2 = m3 = m4 = st.container(horizontal=True, wrap=True, key="metrics_data")  # two by two on a phone
m1.metric("Training images", f"{len(ds.x_train):,}")
m2.metric("Test images", f"{len(ds.x_test):,}")
m3.metric("Image shape", " × ".join(map(str, ds.image_shape)))
m4.metric("Classes", ds.num_classes)

# Results depend only on the (shared) dataset, so they are computed once per process.
_key = (ds.name, ds.source, len(ds.x_train), len(ds.x_test), ds.source_text)


@st.cache_resource(show_spinner="Summing the images…", max_entries=8)
def _stats(key, _ds):
    return exploration.class_counts(_ds), exploration.mean_images(_ds), exploration.pixel_histogram(_ds)


counts, means, hist = _stats(_key, ds)

# One view at a time: only the chosen view is computed and sent, so the page stays quick on a
# projector and on a small shared server (tabs would render all five, figures included).
PIXEL_WINDOW = 10  # the preprocessing view writes the numbers of this many × this many pixels
VIEWS = ["Samples", "Class balance", "Mean image per class", "Pixel values", "Preprocessing for a CNN"]
widget_state.owned("data.view", VIEWS[0])
view = st.segmented_control("Explore", VIEWS, **widget_state.bind("data.view", keep=True)) or VIEWS[0]

if view == "Samples":
    c1, c2, c3 = st.columns([2, 1, 1])
    choices = ["all classes"] + list(ds.class_names)
    widget_state.owned_choice("data.sample_class", choices, choices[0])  # not a class of the dataset used before
    widget_state.owned("data.sample_count", 20)
    widget_state.owned("data.sample_shuffle", False)
    which = c1.selectbox("Show", choices, **widget_state.bind("data.sample_class"))
    n = c2.slider("How many", 10, 60, step=10, **widget_state.bind("data.sample_count"))
    shuffled = c3.toggle("Random order", help="Off: the first images, as the lessons show.",
                         **widget_state.bind("data.sample_shuffle"))
    cls = None if which == "all classes" else ds.class_names.index(which)
    idx = exploration.sample_indices(ds, n=n, class_index=cls, shuffle_seed=7 if shuffled else None)
    imgs, captions = exploration.images_with_labels(ds, idx)
    title = f"The first {len(idx)} training images" if not shuffled else f"{len(idx)} random training images"
    st.html(charts.image_grid_html(imgs, captions, cols=10, title=title))

elif view == "Class balance":
    st.plotly_chart(exploration.class_counts_figure(counts), key="class_counts")
    share = counts["train share"]
    st.caption(f"The smallest class holds {share.min():.1%} of the training images and the largest "
               f"{share.max():.1%}. " + ("The classes are balanced: accuracy is a fair score."
                                         if share.max() - share.min() < 0.05 else
                                         "The classes are unbalanced: look at per-class recall, not only accuracy."))
    st.dataframe(counts.style.format({"train share": "{:.1%}"}), hide_index=True)

elif view == "Mean image per class":
    st.html(charts.image_grid_html(means, list(ds.class_names), cols=10,
                                   title="The average training image of each class"))
    st.caption("Averaging every image of a class shows its typical shape. Where two means look alike "
               "(a 4 and a 9, a shirt and a pullover), expect the model to confuse them.")

elif view == "Pixel values":
    widget_state.owned("data.hist_log", True)
    log = st.toggle("Logarithmic count axis", **widget_state.bind("data.hist_log"))
    st.plotly_chart(exploration.pixel_histogram_figure(hist, log_scale=log), key="pixel_hist")
    dark = hist.loc[hist["value"] == 0, "share"].iloc[0]
    st.caption(f"{dark:.0%} of all pixels are exactly 0 (background). Values run from 0 to 255: "
               "one byte each, which is why the data arrives as uint8.")

else:  # Preprocessing for a CNN
    if not 0 <= widget_state.owned("data.prep_index", 0) < len(ds.x_train):
        st.session_state["data.prep_index"] = 0
    idx_demo = st.number_input("Training image number", 0, len(ds.x_train) - 1, **widget_state.bind("data.prep_index"))
    demo = exploration.preprocessing_demo(ds, int(idx_demo))
    st.markdown(exploration.scaling_sentence(demo))
    r0, c0 = exploration.busiest_window(demo.raw, PIXEL_WINDOW)
    st.caption(f"The {PIXEL_WINDOW}×{PIXEL_WINDOW} pixels of rows {r0}–{r0 + PIXEL_WINDOW - 1} and columns "
               f"{c0}–{c0 + PIXEL_WINDOW - 1}, where this image changes most (an edge of the stroke).")
    window = (r0, c0, PIXEL_WINDOW)
    a, b = st.columns(2)
    a.plotly_chart(exploration.pixel_values_figure(demo.raw, f"Stored: uint8 {demo.raw_shape}", window=window),
                   key="prep_raw")
    b.plotly_chart(exploration.pixel_values_figure(demo.scaled, "Scaled: float32 0–1", decimals=1, window=window),
                   key="prep_scaled")
    st.markdown(f"**2. Add the channel axis.** A Conv2D layer expects height × width × channels "
                f"(\"channels last\"). This image is stored as {' × '.join(map(str, demo.raw_shape))}"
                f" and goes into the model as "
                f"{' × '.join(map(str, demo.model_shape))}; a batch of {demo.batch_shape[0]} images is "
                f"{' × '.join(map(str, demo.batch_shape))}.")
    st.code(f"x = x.astype('float32') / 255          # {demo.raw_shape} uint8 → float32 in [0, 1]\n"
            f"x = np.expand_dims(x, -1)               # → {demo.model_shape}" if ds.is_grayscale else
            f"x = x.astype('float32') / 255          # {demo.raw_shape}: colour images already have 3 channels",
            language="python", wrap_lines=True)   # a phone wraps it: no region only a mouse can scroll
    st.markdown(f"**3. Labels.** This image's label is the integer **{demo.label}** ({inert(demo.label_name)}). "
                "Keep integers and train with **sparse categorical cross-entropy**, or turn them into one-hot "
                "vectors and train with **categorical cross-entropy**: the two losses give the same number.")
    st.plotly_chart(exploration.one_hot_figure(demo.one_hot, ds.class_names), key="prep_onehot")
    st.markdown("**4. Hold out a validation set.** Part of the training data is kept aside to watch for "
                "over-fitting while training; the test set is only used at the end. With 20 % held out "
                "(`train_test_split(..., test_size=0.2, random_state=13)`, stratified):")
    st.dataframe(exploration.validation_split(ds), hide_index=True)
