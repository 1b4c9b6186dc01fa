"""Home: what CNN Lab teaches, the four stages and the draw step, each with a link."""

import streamlit as st

from cnnkit import network_picture, presets
from cnnkit.plain_text import inert
from webapp import stages, student

st.title("CNN Lab")
st.markdown(
    "#### Build a convolutional neural network, train it, and watch it read your handwriting.\n"
    "Every CNN lesson walks the same four stages. Here each stage is a page: you load and explore the "
    "images, stack the layers yourself and see every shape and parameter count as Keras would report it, "
    "train your model while the curves draw themselves, find out where it goes wrong, and finally draw a "
    "digit for the model *you* built."
)

ds = student.dataset()
st.info(f"Dataset in use: **{inert(ds.title)}** — {inert(ds.source_text)}", icon=":material/dataset:")

lesson_stages = [s for s in stages.existing_stages() if s.path != "app_pages/home.py"]
# Three cards a row: each link and its sentence stay readable on a projector (a phone stacks them).
PER_ROW = 3
for start in range(0, len(lesson_stages), PER_ROW):
    for col, stage in zip(st.columns(PER_ROW), lesson_stages[start:start + PER_ROW], strict=False):
        with col, st.container(border=True):
            st.page_link(stage.path, label=f"**{stage.title}**", icon=stage.icon)
            st.caption(stage.blurb)

st.subheader("The pipeline you will build")
# The same picture as the Architecture page, still: the lesson's model from the image to the ten scores.
lesson = presets.get(presets.DEFAULT, ds.image_shape, ds.num_classes)
blocks = network_picture.blocks(lesson.spec)
for box, per_row in (("home_picture_wide", 9), ("home_picture_narrow", network_picture.PHONE_PER_ROW)):
    with st.container(key=box):   # app.css shows the one that fits the screen
        st.plotly_chart(network_picture.network_figure(blocks, per_row=per_row), key=f"{box}_chart",
                        config={"staticPlot": True}, width="stretch")
st.caption(network_picture.picture_text(blocks))
st.markdown(
    "- **Convolution**: a 3×3 filter slides over the image and takes a weighted sum at every position.\n"
    "- **Pooling** halves the image's size: max pooling keeps the largest value of each 2×2 window (average "
    "pooling keeps their mean).\n"
    "- **Parameters**: 32 filters of 3×3 on one channel have 32 × (3·3·1 + 1) = 320 parameters (288 weights + "
    "32 biases).\n"
    "- **Over-fitting**: validation loss turns up while training loss keeps falling.\n"
    "- **Preprocessing**: scale pixels to 0–1 and prepare a drawing the way MNIST's digits were prepared."
)
st.caption("Start with **1 · Data** and work down the list in the sidebar. Your dataset, model and training "
           "job follow you from page to page, and survive a reload.")
