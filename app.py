"""CNN Lab: the entry point. It only routes: the sidebar and the pages in lesson order."""

from pathlib import Path

import streamlit as st

import session

st.set_page_config(page_title="CNN Lab", page_icon=":material/neurology:", layout="wide")
st.html(Path(__file__).with_name("app.css"))  # the layout for a projector and a phone
session.init()

pages = [st.Page(s.path, title=s.title, icon=s.icon, default=(i == 0))
         for i, s in enumerate(session.existing_stages())]
nav = st.navigation(pages)
session.sidebar()
nav.run()
