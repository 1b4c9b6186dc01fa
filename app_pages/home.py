"""Home: what CNN Lab teaches, the four stages and the draw step, each with a link."""

import streamlit as st

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

st.subheader("What you will learn")
left, right = st.columns(2)
with left:
    st.markdown(
        "- **Convolution**: a small filter slides over the image and takes a weighted sum at every position. "
        "In one dimension, sliding b = [1, 2, 3] over a = [2, 5, 8, 4, 7, 9] gives 2·1+5·2+8·3 = 36, then "
        "5·1+8·2+4·3 = 33, and so on. A 3×3 filter does the same in two dimensions.\n"
        "- **Pooling** keeps the strongest response in each 2×2 window and halves the image's size.\n"
        "- **Flatten and Dense layers** turn the feature maps into one score per class; **softmax** makes the "
        "scores probabilities."
    )
with right:
    st.markdown(
        "- **Parameters**: a Conv2D layer with 32 filters of 3×3 on one channel has 32 × (3·3·1 + 1) = 320 "
        "weights; the Dense layer after Flatten usually has most of them.\n"
        "- **Over-fitting**: when training accuracy keeps rising but validation loss turns up, the model is "
        "memorising; dropout and pooling fight it.\n"
        "- **Preprocessing matters**: scale pixels to 0–1, add the channel axis, and prepare a drawing the "
        "way MNIST's digits were prepared, or the model will misread it."
    )
st.caption("Start with **1 · Data** and work down the list in the sidebar. Your dataset, model and training "
           "job follow you from page to page, and survive a reload.")
