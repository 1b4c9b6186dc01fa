"""CNN Lab: the entry point. It only routes: the sidebar and the pages in lesson order."""

from pathlib import Path

import streamlit as st

from webapp import keras_hygiene, lecturer, sidebar, stages, student

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")
lecturer.adopt_secrets()  # Community Cloud's Secrets hold the CNNKIT_* settings: before anything reads one
st.html(Path(__file__).with_name("app.css"))  # the layout for a projector and a phone
student.init()

# The lecturer's Class page is always routable (a lecturer opens /class and types the key) but
# appears in the navigation only for a browser unlocked with the key.
unlocked = lecturer.is_lecturer()
pages = [st.Page(s.path, title=s.title, icon=s.icon, default=(i == 0),
                 visibility="hidden" if s.lecturer and not unlocked else "visible")
         for i, s in enumerate(stages.existing_stages(lecturer=True))]
nav = st.navigation(pages)
sidebar.show()
nav.run()
keras_hygiene.settle_imports()  # after the first run, and again once a page has imported Keras
