"""Synthetic pen strokes for the drawing tests: a digit as polylines rendered on a canvas.

Shared by tests/test_drawing.py, tests/test_page_draw.py and bench/bench_draw.py.
"""

from __future__ import annotations

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
