"""Students' text made inert: a name a student controls, shown as the plain text it is.

Nicknames, model and run names, file names and class names (a zip's folders) reach the lecturer's projected
page. Streamlit renders Markdown (and its own `:red[…]`, `:material/…:`, `$…$` additions) in `st.markdown`,
captions, toasts, alerts, labels and spinners; Plotly renders a few HTML tags (`<a href>`, `<b>`) in chart
text. A model named `![b](http://HOST/x)` would make every viewer's browser fetch that address. `inert` escapes
a name for the Markdown of those elements, `chart_text` for Plotly; both show the same characters as typed.
"""

from __future__ import annotations

import html
import re

# Characters that start Markdown (or Streamlit's extensions, or HTML) anywhere in a line. A backslash before
# ASCII punctuation shows the character itself (CommonMark), so escaping changes nothing a reader sees.
_ANYWHERE = set("\\`*_[]<>&$~|")
_LINE_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d+)([.)]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def inert(text: object) -> str:
    """`text` escaped for Streamlit Markdown: no link, image, HTML, emphasis, code, LaTeX, colour or list.

    Line breaks become spaces (a name is one line), so nothing can start a heading, quote or table.
    """
    s = _CONTROL.sub(" ", str(text))
    out = "".join("\\" + c if c in _ANYWHERE and not _inside_word(s, i) else c for i, c in enumerate(s))
    out = out.replace("://", ":\\//")        # no bare autolink (http://…) and no :material/icon: shortcode
    out = out.replace(":/", ":\\/")
    out = out.replace("www.", "www\\.")
    return _LINE_START.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"),
                           out, count=1)


def _inside_word(s: str, i: int) -> bool:
    # An underscore between two letters or digits never starts emphasis (CommonMark): fast_cpu stays as typed.
    return s[i] == "_" and 0 < i < len(s) - 1 and s[i - 1].isalnum() and s[i + 1].isalnum()


def chart_text(text: object) -> str:
    """`text` for a Plotly title, label, legend or hover: its tags shown, never followed."""
    return html.escape(_CONTROL.sub(" ", str(text)), quote=False)


def inert_message(text: object) -> str:
    """A sentence of ours that may quote a student's name (an error, a note): escaped as `inert`, line by line
    (its line breaks kept). Our sentences carry no Markdown of their own, so nothing is lost."""
    return "  \n".join(inert(line) for line in str(text).split("\n"))
