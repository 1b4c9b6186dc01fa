"""Students' text is inert: names a student controls are shown as plain text — never Markdown or HTML — on the
Class page (toasts, chart) and the Evaluation page (issue #26)."""

from __future__ import annotations

import dataclasses

import pytest
from markdown_it import MarkdownIt
from test_page_class import _FakeModel, _unlocked, lecture  # noqa: F401 — the lecture fixture
from test_page_evaluation import _open, _save, _texts

from cnnkit import classroom, identity, presets, runs
from cnnkit.plain_text import chart_text, inert

HOSTILE = ["![b](http://127.0.0.1:9/x)", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))"]
MORE = ["**bold** _it_ `code`", ":red[big] :material/home: $x^2$", "# heading", "1. item", "- item", "a\nb",
        "&lt;img&gt; <http://a.b> www.example.com", "\\![b](x)", "> quote | t |"]


@pytest.mark.parametrize("text", HOSTILE + MORE)
def test_inert_text_renders_as_the_characters_typed(text):
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(inert(text))
    assert "<img" not in html and "<a " not in html and "<em>" not in html and "<strong>" not in html
    assert "<code>" not in html and "<h1>" not in html and "<ol>" not in html and "<ul>" not in html
    assert "<blockquote>" not in html and "<table>" not in html
    # what the reader sees is what was typed (one line)
    from html import unescape
    shown = unescape(html.removeprefix("<p>").removesuffix("</p>\n"))
    assert shown == text.replace("\n", " ")


def test_chart_text_shows_tags():
    assert chart_text("<a href='x'>y</a>") == "&lt;a href='x'&gt;y&lt;/a&gt;"


def test_class_page_shows_hostile_names_as_text(lecture):  # noqa: F811
    student = identity.new_owner_id()
    spec = dataclasses.replace(presets.get("fast_cpu").spec, name=HOSTILE[1])   # the model's name
    runs.save_run(_FakeModel(), spec, {"epochs": 3}, {"loss": [1.0]}, {"test_accuracy": 0.9, "epochs_run": 1},
                  "mnist", owner=student, title=HOSTILE[1])
    classroom.book().set_nickname(student, "_Ada_")   # nicknames allow letters, digits and . - _ '
    at = _unlocked(lecture)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "<img" not in spec and "&lt;img src=x onerror=alert(1)&gt;" in spec
    next(b for b in at.button if b.label == "Share with the class").click().run()
    assert not at.exception
    toasts = [t.value for t in at.toast]
    assert toasts and all(HOSTILE[1] not in t for t in toasts), toasts
    assert any(inert(HOSTILE[1]) in t for t in toasts), toasts


def test_evaluation_page_shows_hostile_run_names_as_text(runs_dir):
    _save(runs_dir, 1, HOSTILE[0], epochs=2)
    _save(runs_dir, 2, HOSTILE[1], epochs=3)
    _save(runs_dir, 3, HOSTILE[2], epochs=1)
    at = _open()
    texts = _texts(at)
    for name in HOSTILE:
        assert name not in texts
    # the compare list names the two newest runs, escaped (the run picker's options are plain text already)
    assert f"1. {inert(HOSTILE[2])} · fast_cpu" in texts and f"2. {inert(HOSTILE[1])} · fast_cpu" in texts
