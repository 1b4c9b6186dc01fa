"""Synthetic pen strokes for the drawing tests: a digit as polylines rendered on a canvas.

Shared by tests/test_drawing.py, tests/test_page_draw.py and bench/bench_draw.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# Digits as polylines in a unit box (x right, y down), the way a student draws them.
DIGITS: dict[str, list[list[tuple[float, float]]]] = {
    "7": [[(0.15, 0.05), (0.85, 0.05), (0.4, 0.95)]],
    "4": [[(0.6, 0.05), (0.1, 0.65), (0.9, 0.65)], [(0.65, 0.35), (0.65, 0.95)]],
    "1": [[(0.58, 0.05), (0.45, 0.95)]],
    "0": [[(0.5 + 0.4 * np.sin(t), 0.5 - 0.45 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]],
}


def draw_digit(
    digit: str = "7",
    canvas: int = 280,
    size: float = 200,
    left: float | None = None,
    top: float | None = None,
    width: int = 20,
    polarity: str = "transparent",
) -> np.ndarray:
    """RGBA canvas (canvas×canvas×4 uint8) with `digit` drawn `size` pixels tall at (left, top).

    polarity: "transparent" (black ink on a transparent canvas, the canvas default),
    "dark_on_light" (opaque white paper) or "light_on_dark" (opaque black, MNIST's way).
    """
    left = (canvas - size) / 2 if left is None else left
    top = (canvas - size) / 2 if top is None else top
    background = {"transparent": (0, 0, 0, 0), "dark_on_light": (255, 255, 255, 255), "light_on_dark": (0, 0, 0, 255)}
    ink = {"transparent": (0, 0, 0, 255), "dark_on_light": (0, 0, 0, 255), "light_on_dark": (255, 255, 255, 255)}
    img = Image.new("RGBA", (canvas, canvas), background[polarity])
    pen = ImageDraw.Draw(img)
    r = width / 2
    for line in DIGITS[digit]:
        points = [(left + x * size, top + y * size) for x, y in line]
        pen.line(points, fill=ink[polarity], width=width, joint="curve")
        for x, y in points:  # round caps and joints, as a real brush leaves
            pen.ellipse((x - r, y - r, x + r, y + r), fill=ink[polarity])
    return np.asarray(img)


def dot(canvas: int = 280, x: float = 140, y: float = 140, width: int = 20) -> np.ndarray:
    """A single click of the brush: one round dot on a transparent canvas."""
    img = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    r = width / 2
    ImageDraw.Draw(img).ellipse((x - r, y - r, x + r, y + r), fill=(0, 0, 0, 255))
    return np.asarray(img)


def rerender(digit28: np.ndarray, canvas: int = 280, size: int = 200, left: int = 40, top: int = 40) -> np.ndarray:
    """An MNIST digit (28×28, float in [0, 1], light on dark) drawn again as a canvas would hold it:
    dark ink on a transparent canvas, `size` pixels across, at (left, top)."""
    big = Image.fromarray(np.asarray(digit28, np.float32).reshape(28, 28), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR
    )
    alpha = np.zeros((canvas, canvas), dtype=np.float32)
    alpha[top : top + size, left : left + size] = np.clip(np.asarray(big), 0, 1)
    rgba = np.zeros((canvas, canvas, 4), dtype=np.uint8)
    rgba[..., 3] = np.rint(alpha * 255).astype(np.uint8)
    return rgba


# --- handwriting for the browser: every digit in several strokes, placed like students place them ----
def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float,
         n: int = 24) -> list[tuple[float, float]]:
    """Points on an ellipse from angle `start` to `end` in degrees: 0 is the top, 90 the right (clockwise)."""
    t = np.radians(np.linspace(start, end, n))
    return [(float(cx + rx * np.sin(a)), float(cy - ry * np.cos(a))) for a in t]


# Each digit as the strokes a student lifts the pen between (unit box, x right, y down). Every one has
# two or three strokes, and several start on the box's top edge (the band where the canvas used to
# swallow strokes).
HANDWRITING: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.5, 0.5, 0.36, 0.46, 0, -180), _arc(0.5, 0.5, 0.36, 0.46, 0, 180)],
    "1": [[(0.36, 0.2), (0.55, 0.03)], [(0.55, 0.03), (0.52, 0.97)]],
    "2": [_arc(0.5, 0.3, 0.32, 0.26, -75, 125) + [(0.15, 0.95)], [(0.15, 0.95), (0.88, 0.95)]],
    "3": [_arc(0.45, 0.27, 0.32, 0.23, -80, 180), _arc(0.45, 0.73, 0.36, 0.24, 0, 245)],
    "4": [[(0.6, 0.03), (0.1, 0.65), (0.9, 0.65)], [(0.68, 0.3), (0.66, 0.97)]],
    "5": [[(0.3, 0.04), (0.25, 0.45)], _arc(0.5, 0.69, 0.32, 0.27, -65, 225), [(0.3, 0.04), (0.85, 0.04)]],
    "6": [_arc(0.72, 0.58, 0.5, 0.54, 20, -95), _arc(0.5, 0.7, 0.28, 0.26, -90, 270, 30)],
    "7": [[(0.12, 0.04), (0.88, 0.04)], [(0.88, 0.04), (0.42, 0.97)]],
    "8": [_arc(0.5, 0.26, 0.26, 0.22, 0, 360, 30), _arc(0.5, 0.72, 0.32, 0.25, 0, 360, 30)],
    "9": [_arc(0.48, 0.3, 0.3, 0.26, 90, 450, 30), [(0.78, 0.3), (0.72, 0.97)]],
}


@dataclass(frozen=True)
class Handwriting:
    """One digit as pen strokes in canvas pixels, with where and how it was written."""

    digit: str
    strokes: tuple[tuple[tuple[float, float], ...], ...]  # canvas pixels
    pen: int  # stroke width in canvas pixels
    place: str  # e.g. "large, top edge"
    right_after_clear: bool  # drawn at once after Clear, without waiting for the page

    def starts_in_top_band(self, canvas: int = 280, band: float = 0.1) -> bool:
        return any(s[0][1] < band * canvas for s in self.strokes)


# (name, size as a fraction of the canvas, left, top) with "E" meaning: against that edge.
PLACES = [
    ("large, centred", 0.85, None, None), ("large, top edge", 0.8, None, "E0"), ("medium, left edge", 0.6, "E0", None),
    ("medium, right edge", 0.6, "E1", None), ("medium, bottom edge", 0.6, None, "E1"),
    ("small, top-left corner", 0.35, "E0", "E0"),
    ("small, bottom-right corner", 0.35, "E1", "E1"), ("small, centred", 0.3, None, None),
    ("medium, top-right corner", 0.5, "E1", "E0"), ("tall and thin, centred", 0.75, None, None),
]


def handwriting(count: int = 40, canvas: int = 280, seed: int = 0, pen: int | None = None) -> list[Handwriting]:
    """`count` digits (each of 0–9 in turn) in sizes and places that cycle through PLACES, pens of 10–32
    pixels (or all `pen` wide), every other one written right after Clear. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        digit = str(i % 10)
        name, frac, left, top = PLACES[(i * 3 + i // 10) % len(PLACES)]
        width_px = int(rng.integers(10, 33)) if pen is None else pen
        margin = width_px / 2 + 2
        height = frac * canvas
        width = height * (0.45 if name.startswith("tall") else 0.75)
        span_x, span_y = canvas - width - 2 * margin, canvas - height - 2 * margin

        def where(rule, span, margin=margin):
            if rule == "E0":
                return margin
            if rule == "E1":
                return margin + span
            return margin + span * float(rng.uniform(0.35, 0.65))

        x0, y0 = where(left, span_x), where(top, span_y)
        strokes = tuple(tuple((x0 + x * width, y0 + y * height) for x, y in line) for line in HANDWRITING[digit])
        out.append(Handwriting(digit, strokes, width_px, name, right_after_clear=i % 2 == 1))
    return out


def render(strokes, canvas: int = 280, width: int = 20) -> np.ndarray:
    """Strokes (canvas pixels) as the canvas holds them: black ink, round caps and joints, transparent."""
    img = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    r = width / 2
    for line in strokes:
        pen.line([tuple(p) for p in line], fill=(0, 0, 0, 255), width=width, joint="curve")
        for x, y in line:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=(0, 0, 0, 255))
    return np.asarray(img)


def replay(page, box: dict, line, step: float = 6.0, hover_ms: int = 0) -> None:
    """Draw one stroke with the real mouse: press at its first point (after resting there `hover_ms`),
    move through the rest in steps of about `step` pixels (a hand moves continuously), release."""
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + line[0][0], y0 + line[0][1])
    if hover_ms:
        page.wait_for_timeout(hover_ms)
    page.mouse.down()
    for (ax, ay), (bx, by) in itertools.pairwise(line):
        n = max(1, int(np.hypot(bx - ax, by - ay) / step))
        page.mouse.move(x0 + bx, y0 + by, steps=n)
    page.mouse.up()


# Shapes for the class-drawn dataset's tests (tests/test_page_collect.py, tests/test_browser_collect.py): one
# closed polyline each in a unit box, drawn at a given size and place on the canvas.
SHAPES: dict[str, list[tuple[float, float]]] = {
    "circle": [(0.5 + 0.5 * np.cos(t), 0.5 + 0.5 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 33)],
    "square": [(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)],
    "triangle": [(0.5, 0), (1, 1), (0, 1), (0.5, 0)],
}


def shape_stroke(name: str, size: float = 160, left: float = 60, top: float = 60) -> list[tuple[float, float]]:
    """One shape as one stroke in canvas pixels: `size` pixels wide at (left, top)."""
    return [(left + x * size, top + y * size) for x, y in SHAPES[name]]


def shape_places(count: int, canvas: int = 280, seed: int = 0) -> list[tuple[float, float, float]]:
    """`count` (size, left, top) places for shapes of different sizes and places, inside the canvas."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        size = float(rng.uniform(90, 200))
        left, top = (float(rng.uniform(25, canvas - 25 - size)) for _ in range(2))
        out.append((size, left, top))
    return out
