"""The drawing canvas of the Draw page: streamlit-drawable-canvas 0.13 with our Clear/Undo buttons and pen width.

Three workarounds for the component live here: its floating toolbar is hidden, because while
invisible it still swallows strokes that start in the canvas's top band; Clear/Undo press the
component's own buttons in the browser, because a Clear that remounts the canvas through a new key
loses the strokes drawn before the new canvas arrives; and pen up presses its "Update the app"
button, because on its own it waits 200 ms before sending a stroke. `draw()` shows it all and
returns what is on the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import streamlit as st

from webapp.widget_state import bind, owned

CANVAS_COMPONENT = "streamlit-drawable-canvas.streamlit_drawable_canvas"
# The component's toolbar floats over the canvas's top-right corner at opacity 0 and slides up only
# 0.1–0.2 s after the pointer enters: a stroke that starts in the top ~30 px of the right half before
# then presses the invisible toolbar and is never drawn. Its Reset and Undo are what our Clear and Undo
# press (below), so the toolbar itself is not needed.
HIDE_TOOLBAR = "\n.dc-toolbar { display: none !important; }\n"
# The icons are Material Symbols' "delete" and "undo" drawn inline: an emoji renders as an empty box on a
# machine without an emoji font, and the page's icon font does not reach inside the component.
_ICON = '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="18" height="18"><path d="{}"/></svg>'
_DELETE = "M6 19c0 1.1.9 2 2 2h8c1.1 0 2-.9 2-2V7H6v12zM19 4h-3.5l-1-1h-5l-1 1H5v2h14V4z"
_UNDO = ("M12.5 8c-2.65 0-5.05.99-6.9 2.6L2 7v9h9l-3.62-3.62c1.39-1.16 3.16-1.88 5.12-1.88 3.54 0 6.55 2.31 7.6 5.5"
         "l2.37-.78C21.08 11.03 17.15 8 12.5 8z")
BUTTONS_HTML = f"""<div class="cnnlab-canvas-buttons">
<button type="button" data-canvas-action="Reset canvas &amp; history" data-name="clear">
{_ICON.format(_DELETE)} Clear</button>
<button type="button" data-canvas-action="Undo" data-name="undo">{_ICON.format(_UNDO)} Undo</button></div>"""
BUTTONS_CSS = """
.cnnlab-canvas-buttons { display: flex; gap: 0.5rem; }
.cnnlab-canvas-buttons button {
  display: inline-flex; align-items: center; gap: 0.3rem;
  font: inherit; font-size: 0.95rem; padding: 0.3rem 0.9rem; cursor: pointer;
  color: var(--st-text-color, #31333f); background: var(--st-background-color, #fff);
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); border-radius: var(--st-button-radius, 0.5rem);
}
.cnnlab-canvas-buttons svg { fill: currentColor; flex: none; }
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


@dataclass(frozen=True)
class Drawing:
    """What is on the canvas: its RGBA pixels (None before the component has sent any) and its stroke count."""
    image: np.ndarray | None
    strokes: int


DIGIT_HINT = "Draw one digit 0–9 with the mouse or a finger, as large or small as you like."


def draw(size: int, hint: str = DIGIT_HINT) -> Drawing:
    """The canvas (size × size pixels), with Clear, Undo and the pen width below it, in the current container;
    `hint` (Markdown: a name a person typed must come escaped) says what to draw."""
    ss = st.session_state
    st_canvas, buttons = canvas_tools()
    ss.setdefault("draw_canvas_gen", 0)
    owned("draw_pen", 20)

    def _new_canvas() -> None:
        ss.draw_canvas_gen += 1  # only when the component's own buttons cannot be pressed

    canvas = st_canvas(stroke_width=int(ss.draw_pen), stroke_color="#000000", background_color="#FFFFFF",
                       width=size, height=size, drawing_mode="freedraw", return_image_data=True,
                       key=f"draw_canvas_{ss.draw_canvas_gen}")
    # one row on a phone too (columns would stack), so the answer sits right under the canvas
    with st.container(horizontal=True, vertical_alignment="center", key="draw_tools"):
        if buttons is not None:
            buttons(key="draw_canvas_buttons", on_fallback_change=_new_canvas)
        else:
            st.button("Clear", icon=":material/delete:", on_click=_new_canvas, key="draw_clear")
        with st.popover("Pen width", icon=":material/brush:"):
            st.slider("Pen width", 5, 50, **bind("draw_pen"), label_visibility="collapsed",
                      help="Any width works: the strokes are evened out to MNIST's pen before the model "
                      "sees them.")
    with st.container(key="draw_hint"):  # app.css: not on a phone, where it would push the answer down
        st.caption(hint)
    # How many strokes this drawing has: the student (and the browser test) can see none went missing.
    return Drawing(canvas.image_data, len((canvas.json_data or {}).get("objects") or []))
