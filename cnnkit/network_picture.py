"""The network as a picture: one block per layer, drawn to scale with its output shape (issue 24).

Every CNN lecture draws the network as blocks — 28×28×1 → 26×26×32 → … → 10. `blocks` turns a
`ModelSpec`'s summary rows into plain `Block`s (what each block shows: its shape, its parameter count, its
colour, its problem); `network_figure` draws them with Plotly shapes, a few blocks a row so that a
20-layer model fits a 1280×720 projector and a phone; `picture_text` says the same in one line for those who
cannot see it (a chart needs adjacent text). Feature maps are slabs whose face follows height × width and whose
depth follows the channels (labelled); Flatten and Dense outputs are bars whose height follows their length.
A layer with a problem is red, and its sentence is under the picture. Pure data and Plotly: no Streamlit.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass

import plotly.graph_objects as go

from cnnkit.spec import ModelSpec, format_shape

# Colour by what a layer does (a problem is always red, and nothing else is).
KIND_COLOURS = {
    "input": "#7f7f7f", "conv": "#1f77b4", "pool": "#ff7f0e", "norm": "#8c564b", "activation": "#9467bd",
    "dropout": "#17becf", "flatten": "#2ca02c", "dense": "#006d5b", "other": "#7f7f7f",
}
PROBLEM_COLOUR = "#d62728"
_KINDS = {
    "Conv2D": "conv", "MaxPooling2D": "pool", "AveragePooling2D": "pool", "GlobalAveragePooling2D": "pool",
    "BatchNormalization": "norm", "ReLU": "activation", "LeakyReLU": "activation", "Dropout": "dropout",
    "SpatialDropout2D": "dropout", "Flatten": "flatten", "Dense": "dense",
}
# Short names that fit under a block on a phone.
SHORT_NAMES = {
    "MaxPooling2D": "MaxPool", "AveragePooling2D": "AvgPool", "GlobalAveragePooling2D": "GlobalAvg",
    "BatchNormalization": "BatchNorm", "SpatialDropout2D": "SpDropout",
}
PER_ROW = 5          # blocks a row on a projector: 20 layers and the input in 5 rows
PHONE_PER_ROW = 3    # blocks a row on a phone (its 14 px labels need ~90 px)
ROW_PX = 96          # a row's height in pixels: the slab and three short lines of text
TEXT_PX = 14         # the app's smallest chart text (charts.CHART_TEXT_PX)


@dataclass(frozen=True)
class Block:
    """One block of the picture: the input (index -1) or a layer."""

    index: int                 # the layer's 0-based position; -1 for the input
    title: str                 # "Conv2D", "MaxPool", "Input" (the number is drawn beside the block)
    layer_type: str
    shape: tuple[int, ...] | None
    params: int | None
    kind: str
    problem: str | None = None

    @property
    def colour(self) -> str:
        return PROBLEM_COLOUR if self.problem else KIND_COLOURS.get(self.kind, KIND_COLOURS["other"])

    @property
    def shape_text(self) -> str:
        return format_shape(self.shape) if self.shape else "?"

    @property
    def params_text(self) -> str:
        if self.index < 0:
            return "image"
        return "? params" if self.params is None else f"{_compact(self.params)} params"


def _compact(n: int) -> str:
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k" if n >= 100_000 else f"{n / 1000:.1f}k"
    return f"{n / 1e6:.1f}M"


def blocks(spec: ModelSpec, problems: dict[int | None, list[str]] | None = None) -> list[Block]:
    """The input and one block per layer, from `spec.summary()` rows; `problems` as
    `ModelSpec.problems_by_layer` gives them (each layer's sentences; None: the whole model's)."""
    problems = problems or {}
    out = [Block(-1, "Input", "Input", tuple(spec.input_shape), None, "input")]
    for row in spec.summary().rows:
        said = problems.get(row.index) or ([row.problem] if row.problem else [])
        out.append(Block(row.index, SHORT_NAMES.get(row.type, row.type), row.type,
                         tuple(row.output_shape) if row.output_shape else None, row.params,
                         _KINDS.get(row.type, "other"), " ".join(said) or None))
    return out


def picture_text(bs: list[Block]) -> str:
    """The picture in one line of words (the text beside it for screen readers and for a quick read)."""
    parts = [f"{b.layer_type if b.index >= 0 else 'input'} {b.shape_text}" + (" (problem)" if b.problem else "")
             for b in bs]
    return "The network, layer by layer: " + " → ".join(parts) + "."


def problem_lines(bs: list[Block]) -> list[str]:
    """One sentence per red block: "Layer 4 (red): …"."""
    return [f"Layer {b.index + 1} (red): {b.problem}" for b in bs if b.problem]


# --- drawing ------------------------------------------------------------------------------------------
def _sizes(bs: list[Block]) -> tuple[float, float, float]:
    spatial = [max(b.shape[0], b.shape[1]) for b in bs if b.shape and len(b.shape) == 3] or [1]
    channels = [b.shape[2] for b in bs if b.shape and len(b.shape) == 3] or [1]
    lengths = [b.shape[0] for b in bs if b.shape and len(b.shape) == 1] or [1]
    return float(max(spatial)), float(max(channels)), float(max(lengths))


def _shade(hex_colour: str, factor: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    mix = (lambda c: int(c + (255 - c) * (factor - 1))) if factor > 1 else (lambda c: int(c * factor))
    return f"rgb({mix(r)},{mix(g)},{mix(b)})"


def _slab(x0: float, y0: float, w: float, h: float, d: float, colour: str, line: dict) -> list[dict]:
    """A box seen from the front-right: face w × h at (x0, y0) (bottom-left), depth d going up and right."""
    dx, dy = d * 0.8, d * 0.6
    face = dict(type="rect", x0=x0, y0=y0, x1=x0 + w, y1=y0 + h, fillcolor=colour, line=line)
    top = dict(type="path", path=f"M {x0},{y0 + h} L {x0 + dx},{y0 + h + dy} L {x0 + w + dx},{y0 + h + dy} "
                                 f"L {x0 + w},{y0 + h} Z", fillcolor=_shade(colour, 1.45), line=line)
    side = dict(type="path", path=f"M {x0 + w},{y0} L {x0 + w + dx},{y0 + dy} L {x0 + w + dx},{y0 + h + dy} "
                                  f"L {x0 + w},{y0 + h} Z", fillcolor=_shade(colour, 0.7), line=line)
    return [top, side, face]


def network_figure(bs: list[Block], *, per_row: int = PER_ROW, selected: int | None = None,
                   title: str | None = None, text_px: int = TEXT_PX) -> go.Figure:
    """The picture: `per_row` blocks a row, left to right and row under row; `selected` (a layer's index) is
    framed in black. Each layer is a point of the one scatter trace (its index in customdata), so a click
    selects it."""
    s_max, c_max, n_max = _sizes(bs)
    rows = max(1, math.ceil(len(bs) / per_row))
    cell_h = 1.0   # data units a row (a cell is 1 wide)
    shapes: list[dict] = []
    annotations: list[dict] = []
    xs, ys, ids, hovers = [], [], [], []
    for k, b in enumerate(bs):
        col, row = k % per_row, k // per_row
        left, top = col * 1.0, -row * cell_h
        base_y = top - 0.47                          # the slab stands on this line; the words go under it
        room = 0.40                                  # the tallest slab
        line = dict(color="black" if b.index == selected and b.index >= 0 else "rgba(0,0,0,0.35)",
                    width=3 if b.index == selected and b.index >= 0 else 1)
        if b.shape and len(b.shape) == 3:
            h_px, w_px, c = b.shape
            side = 0.12 + 0.42 * math.sqrt(max(h_px, w_px) / s_max)
            h = side * (h_px / max(h_px, w_px)) * room / 0.54
            w = side * (w_px / max(h_px, w_px)) * 0.9
            d = 0.03 + 0.17 * (math.log2(c + 1) / math.log2(c_max + 1))
            x0 = left + 0.5 - (w + d * 0.8) / 2
            shapes += _slab(x0, base_y, w, h, d, b.colour, line)
        elif b.shape and len(b.shape) == 1:
            h = 0.08 + (room - 0.08) * (math.log10(b.shape[0] + 1) / math.log10(n_max + 1))
            w = 0.09
            shapes.append(dict(type="rect", x0=left + 0.5 - w / 2, y0=base_y, x1=left + 0.5 + w / 2, y1=base_y + h,
                               fillcolor=b.colour, line=line))
        else:   # no shape: a dashed outline where the block would be
            shapes.append(dict(type="rect", x0=left + 0.3, y0=base_y, x1=left + 0.7, y1=base_y + 0.3,
                               fillcolor="rgba(0,0,0,0)", line=dict(color=b.colour, width=2, dash="dot")))
        words = (f"<b>{b.title}</b><br>{b.shape_text}<br><span style='color:#555'>{b.params_text}</span>")
        annotations.append(dict(x=left + 0.5, y=base_y - 0.02, text=words, showarrow=False, yanchor="top",
                                xanchor="center", font=dict(size=text_px, color=PROBLEM_COLOUR if b.problem
                                                            else "#262730")))
        if b.index >= 0:
            annotations.append(dict(x=left + 0.01, y=base_y + 0.01, text=str(b.index + 1), showarrow=False,
                                    xanchor="left", yanchor="bottom", font=dict(size=text_px, color="#555")))
            xs.append(left + 0.5)
            ys.append(base_y + 0.2)
            ids.append(b.index)
            hovers.append(f"Layer {b.index + 1}: {b.layer_type} → {b.shape_text}, "
                          f"{'?' if b.params is None else f'{b.params:,}'} parameters"
                          + (f"<br>{b.problem}" if b.problem else "") + "<br>Click to change its settings")
    hidden = dict(marker=dict(opacity=0))   # the points only catch the hover and the click
    fig = go.Figure(go.Scatter(x=xs, y=ys, customdata=ids, mode="markers", hovertext=hovers, hoverinfo="text",
                               marker=dict(size=44, color="white", opacity=0, symbol="square"), showlegend=False,
                               selected=hidden, unselected=hidden))
    fig.update_layout(shapes=shapes, annotations=annotations, height=int(rows * ROW_PX + (34 if title else 8)),
                      margin=dict(l=0, r=0, t=30 if title else 4, b=4), title=title, dragmode=False,
                      plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", hovermode="closest",
                      font=dict(size=text_px), clickmode="event+select")
    fig.update_xaxes(range=[-0.02, per_row + 0.02], visible=False, fixedrange=True)
    fig.update_yaxes(range=[-rows * cell_h - 0.06, 0.02], visible=False, fixedrange=True)
    return fig


def network_svg(bs: list[Block], *, per_row: int = PER_ROW, cell_px: int = 150) -> str:
    """The picture as a standalone SVG (the exported notebook shows it): the same slabs, bars and words as
    `network_figure`, `cell_px` wide a block, with `picture_text` as its title for those who cannot see it."""
    fig = network_figure(bs, per_row=per_row)
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    width, height = per_row * cell_px, int(fig.layout.height)
    sx, sy = width / (x1 - x0), height / (y1 - y0)

    def at(x: float, y: float) -> tuple[float, float]:
        return (x - x0) * sx, (y1 - y) * sy

    def where(m: re.Match) -> str:
        return "{:.1f},{:.1f}".format(*at(float(m[1]), float(m[2])))

    out = []
    for s in fig.layout.shapes:
        paint = (f'fill="{s.fillcolor}" stroke="{s.line.color}" stroke-width="{s.line.width or 1}"'
                 + (' stroke-dasharray="3 3"' if s.line.dash else ""))
        if s.type == "rect":
            (ax, ay), (bx, by) = at(s.x0, s.y0), at(s.x1, s.y1)
            out.append(f'<rect x="{min(ax, bx):.1f}" y="{min(ay, by):.1f}" width="{abs(bx - ax):.1f}" '
                       f'height="{abs(by - ay):.1f}" {paint}/>')
        else:
            out.append(f'<path d="{re.sub(r"(-?[0-9.]+),(-?[0-9.]+)", where, s.path)}" {paint}/>')
    for a in fig.layout.annotations:
        x, y = at(a.x, a.y)
        lines = [html.escape(re.sub(r"<[^>]+>", "", line)) for line in a.text.split("<br>")]
        anchor = "middle" if a.xanchor == "center" else "start"
        first = y + TEXT_PX if a.yanchor == "top" else y - 3
        spans = "".join(f'<tspan x="{x:.1f}" y="{first + i * TEXT_PX * 1.25:.1f}"'
                        + (' font-weight="bold"' if i == 0 and len(lines) > 1 else "") + f">{line}</tspan>"
                        for i, line in enumerate(lines))
        out.append(f'<text text-anchor="{anchor}" font-size="{TEXT_PX}" fill="{a.font.color}">{spans}</text>')
    title = html.escape(picture_text(bs))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" role="img"><title>{title}</title>'
            + "".join(out) + "</svg>")
