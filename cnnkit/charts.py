"""Plotly figures for every page, one section per figure.

Each function takes plain data (numpy arrays, lists, dicts, DataFrames) and
returns a `plotly.graph_objects.Figure` (image grids: a small HTML fragment that
reflows on a phone); none of them computes ML results
(those come from cnnkit.evaluation, cnnkit.datasets, ...) and none imports
Streamlit or Keras, so pages and tests build them in milliseconds.

Colours: one palette for train/validation and right/wrong, used everywhere so a
student learns them once.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnnkit.evaluation import best_epoch
from cnnkit.plain_text import chart_text
from cnnkit.spec import format_count

TRAIN_COLOUR = "#1f77b4"  # blue
VALIDATION_COLOUR = "#ff7f0e"  # orange
RIGHT_COLOUR = "#2ca02c"  # green
WRONG_COLOUR = "#d62728"  # red
BEST_COLOUR = "#7f7f7f"  # grey marker for the best epoch
# Distinct colours for overlaying several runs (plotly's default qualitative set).
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_MARGIN = dict(l=10, r=10, t=40, b=10)
# Side-by-side plots: room for the figure's title above the plots' own titles (they overlapped at 14 px+).
_SUBPLOTS_MARGIN = dict(_MARGIN, t=80)


CHART_TEXT_PX = 14  # the smallest chart text: ticks, legends, colour bars, cell numbers (a projector's back row)


def readable(fig: go.Figure, size: int = CHART_TEXT_PX) -> go.Figure:
    """Raise every text of the figure to at least `size` px (titles to `size` + 2): the base font, axis
    ticks and titles, legends, colour bars, hover labels and annotations (subplot titles). Larger sizes
    a figure asked for are kept. Streamlit's chart theme would otherwise draw ticks at 12 px."""

    def at_least(current, floor: int = size) -> int:
        return max(floor, int(current or 0))

    fig.update_layout(font_size=at_least(fig.layout.font.size), hoverlabel_font_size=at_least(None),
                      legend_font_size=at_least(fig.layout.legend.font.size))
    if fig.layout.title.text:
        fig.update_layout(title_font_size=at_least(fig.layout.title.font.size, size + 2))
    fig.for_each_xaxis(lambda ax: ax.update(tickfont_size=at_least(ax.tickfont.size),
                                            title_font_size=at_least(ax.title.font.size)))
    fig.for_each_yaxis(lambda ax: ax.update(tickfont_size=at_least(ax.tickfont.size),
                                            title_font_size=at_least(ax.title.font.size)))
    fig.for_each_annotation(lambda a: a.update(font_size=at_least(a.font.size)))
    for trace in fig.data:
        if "colorbar" in trace and getattr(trace, "showscale", None) is not False:
            trace.update(colorbar_tickfont_size=at_least(trace.colorbar.tickfont.size),
                         colorbar_title_font_size=at_least(trace.colorbar.title.font.size))
        if "textfont" in trace and trace.text is not None and trace.textfont.size is None:
            trace.update(textfont_size=size)
    return fig


# --- class axes ----------------------------------------------------------------------
EVERY_CLASS_LABELLED = 20  # up to this many classes, a class axis names every class (more would overlap)


def class_axis(class_names: Sequence[str], **extra) -> dict:
    """A category axis of classes that names every class when there are at most 20 (tick step 1).

    Class names such as "0".."9" stay labels, not a numeric scale; left to itself plotly would
    label only every other one on a narrow chart. Use: `fig.update_layout(xaxis=class_axis(names))`.
    """
    axis = dict(type="category", **extra)
    if len(class_names) <= EVERY_CLASS_LABELLED:
        axis.update(tickmode="linear", tick0=0, dtick=1)
    return axis


# --- confusion matrix ---------------------------------------------------------------
MATRIX_TEXT_CLASSES = 12  # more classes than this: no numbers in the cells (they would not fit at 14 px)


def confusion_matrix_figure(
    matrix: np.ndarray,
    class_names: Sequence[str],
    normalised: np.ndarray | None = None,
    title: str = "Confusion matrix",
    selected: tuple[int, int] | None = None,
    phone: bool = False,
) -> go.Figure:
    """Heatmap: rows are true classes, columns predicted classes, each cell shows its count.

    With `normalised` (the row-normalised matrix) the colour shows the share of
    each true class (so small classes are not washed out) and the text shows
    both count and percentage. An invisible marker sits on every cell so that a
    click selects it (plotly cannot select heatmap cells); its customdata is
    (true index, predicted index). `selected` draws a frame around one cell. `phone`: a 390 px screen's
    ~30 px cells hold a count at 14 px but not a share under it, so its cells show the count alone, and the
    figure is only as tall as its square plot needs.
    """
    matrix = np.asarray(matrix)
    k = len(class_names)
    names = [chart_text(c) for c in class_names]
    colour = np.asarray(normalised, dtype=float) if normalised is not None else matrix.astype(float)
    if k > MATRIX_TEXT_CLASSES:
        text = [["" for _ in range(k)] for _ in range(k)]  # hover a cell for its numbers
        colour_title = "share of<br>true class" if normalised is not None else "images"
        hover = "true %{y}<br>predicted %{x}<br>%{z:.3g}<extra></extra>"
    elif normalised is not None:
        text = [[(f"{matrix[t, p]}" if phone else f"{matrix[t, p]}<br>{colour[t, p]:.0%}") if matrix[t, p] else ""
                 for p in range(k)] for t in range(k)]
        colour_title = "share of<br>true class"
        hover = "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>"
    else:
        text = [[str(matrix[t, p]) if matrix[t, p] else "" for p in range(k)] for t in range(k)]
        colour_title = "images"
        hover = "true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=colour,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            # numbers a projector's back row can read; beyond 12 classes the cells are too small for any
            textfont=dict(size=CHART_TEXT_PX),
            colorscale="Blues",
            # a thin bar under the matrix: on a phone the matrix keeps the whole width
            colorbar=dict(title=dict(text=colour_title, side="top"), orientation="h", thickness=10, len=0.6,
                          y=-0.22, yanchor="top"),
            hovertemplate=hover,
            xgap=1,
            ygap=1,
        )
    )
    tt, pp = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    fig.add_trace(
        go.Scatter(
            x=[names[p] for p in pp.ravel()],
            y=[names[t] for t in tt.ravel()],
            customdata=np.stack([tt.ravel(), pp.ravel()], axis=1),
            mode="markers",
            # nearly invisible, but large enough that a click anywhere in the cell hits it
            marker=dict(size=max(12, 360 // max(k, 1)), opacity=0.01, color="black", symbol="square"),
            hoverinfo="none",  # "skip" would also drop its click events
            showlegend=False,
            name="cells",
        )
    )
    if selected is not None:
        t, p = selected
        fig.add_shape(
            type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, line=dict(color=WRONG_COLOUR, width=3)
        )
    side = max(360, 52 * k)  # square cells big enough for "count / share" text
    fig.update_layout(
        title=title,
        # category axes: class names such as "0".."9" must not turn into a numeric scale
        # the cells' edges are the axes' ends (left to itself, plotly pads them for the click markers)
        xaxis=dict(title="predicted class", type="category", range=[-0.5, k - 0.5], constrain="domain",
                   tickangle=-40 if max(map(len, names), default=0) > 3 else 0),
        # square cells at any width: the page lets the figure take its column's width
        yaxis=dict(title="true class", type="category", range=[k - 0.5, -0.5], scaleanchor="x", constrain="domain"),
        margin=dict(l=10, r=10, t=50, b=10),
        height=550 if phone else side + 190,   # a phone: its ~360 px width makes the square, whatever k
        clickmode="event+select",
        dragmode=False,
    )
    return readable(fig)


# --- training curves ------------------------------------------------------------------
def training_curves_figure(
    history: Mapping[str, Sequence[float]],
    title: str = "Training curves",
    running: Sequence[Sequence[float]] | None = None,
) -> go.Figure:
    """Loss and accuracy per epoch side by side, training vs validation, best validation epoch marked.

    A widening gap between the two curves is over-fitting; the dotted line marks
    the epoch with the lowest validation loss (what EarlyStopping would keep).
    `running` adds the smoothed running training curve, points (epoch_position,
    loss, accuracy) recorded every few batches (cnnkit.progress.RunningCurve), as a
    thin line under the per-epoch points: epoch 0.5 is half-way through the first
    epoch and 1.0 its end, where the first per-epoch point sits.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (lower is better)", "Accuracy (higher is better)"))
    best = best_epoch(history)
    points = [p for p in (running or ()) if len(p) >= 3]
    if points:
        xs = [float(p[0]) for p in points]
        for col, metric, i in ((1, "loss", 1), (2, "accuracy", 2)):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[float(p[i]) for p in points],
                    mode="lines",
                    name="training, running (smoothed)",
                    legendgroup="running",
                    showlegend=col == 1,
                    line=dict(color=TRAIN_COLOUR, width=1.2),
                    opacity=0.55,
                    hovertemplate=f"running training {metric}<br>epoch %{{x:.2f}}: %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for key, label, colour, dash in (
            (metric, "training", TRAIN_COLOUR, "solid"),
            (f"val_{metric}", "validation", VALIDATION_COLOUR, "dash"),
        ):
            values = list(history.get(key) or [])
            if not values:
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,
                    line=dict(color=colour, dash=dash),
                    hovertemplate=f"{label} {metric}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        if best is not None:
            fig.add_vline(x=best, line=dict(color=BEST_COLOUR, dash="dot"), row=1, col=col)
            val = history.get(f"val_{metric}") or []
            if len(val) >= best:
                fig.add_trace(
                    go.Scatter(
                        x=[best],
                        y=[val[best - 1]],
                        mode="markers",
                        marker=dict(size=13, color=VALIDATION_COLOUR, symbol="star", line=dict(color="black", width=1)),
                        name=f"best validation (epoch {best})",
                        legendgroup="best",
                        showlegend=col == 1,
                        hovertemplate=f"best validation epoch {best}: %{{y:.4f}}<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
    epochs = max(len(history.get("loss") or []), math.ceil(max((p[0] for p in points), default=0)))
    fig.update_xaxes(title_text="epoch", dtick=1 if epochs <= 20 else None)
    if points:
        # The running line starts inside the first epoch: show the axis from 0 so it is not cut off.
        fig.update_xaxes(range=[0, max(epochs, 1) + 0.1])
    fig.update_layout(
        title=title, margin=_SUBPLOTS_MARGIN, height=420, legend=dict(orientation="h", y=-0.2),
        hovermode="x unified"
    )
    return readable(fig)


# --- comparing runs -----------------------------------------------------------------------
def compare_legend(run: str, kind: str) -> str:
    """A compare chart's legend entry: "Run 1 · validation", "Run 1 · train"."""
    return f"{run} · {kind}"


def compare_runs_figure(histories: Mapping[str, Mapping[str, Sequence[float]]],
                        title: str = "Runs compared") -> go.Figure:
    """Validation loss and accuracy of several runs overlaid, one colour per run.

    Solid lines are validation, dotted lines the same run's training curve, so a
    run that over-fits shows its two lines of one colour drifting apart. Every legend
    entry says "run · train" or "run · validation": a bare run label would name one
    of its two curves only.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    for i, (label, history) in enumerate(histories.items()):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        for col, metric in ((1, "loss"), (2, "accuracy")):
            for key, kind, dash, width in ((f"val_{metric}", "validation", "solid", 2.5),
                                           (metric, "train", "dot", 1.5)):
                values = list(history.get(key) or [])
                if not values:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(values) + 1)),
                        y=values,
                        mode="lines+markers",
                        name=chart_text(compare_legend(label, kind)),
                        legendgroup=label,
                        showlegend=col == 1,
                        line=dict(color=colour, dash=dash, width=width),
                        marker=dict(size=5),
                        hovertemplate=f"{chart_text(label)}<br>{kind} {metric}, epoch %{{x}}: %{{y:.4f}}"
                                      "<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
    longest = max((len(h.get("loss") or []) for h in histories.values()), default=0)
    fig.update_xaxes(title_text="epoch", dtick=1 if longest <= 20 else None)
    fig.update_layout(title=title, margin=_SUBPLOTS_MARGIN, height=460, legend=dict(orientation="h", y=-0.2))
    return readable(fig)


# --- image grids ---------------------------------------------------------------------------
def class_scatter_figure(points: Sequence[Mapping], large: bool = False,
                         title: str = "Accuracy against parameters", height: int | None = None) -> go.Figure:
    """The class's runs: test accuracy against parameter count (log axis), one colour per dataset.

    `points` are `ClassSummary.scatter_points()`; each point is labelled with its (shortened) student name,
    hovering names the architecture, its parameters, FLOPs and epochs. Shared runs are diamonds. The
    accuracy ticks are distinct however close the runs are (`accuracy_ticks`). `large` is the projector's
    version: bigger type and markers.
    """
    font = 22 if large else 14
    size = 16 if large else 10
    fig = go.Figure()
    datasets = list(dict.fromkeys(chart_text(p["dataset"]) for p in points))
    for i, ds in enumerate(datasets):
        mine = [p for p in points if chart_text(p["dataset"]) == ds]
        fig.add_trace(go.Scatter(
            x=[p["parameters"] for p in mine], y=[p["test_accuracy"] for p in mine], name=ds,
            # Each point says whose it is (hovering is no use on a projector); labels alternate above and below.
            mode="markers+text", text=[chart_text(p.get("label", "")) for p in mine], cliponaxis=False,
            textposition=["top center" if k % 2 == 0 else "bottom center" for k in range(len(mine))],
            textfont=dict(size=font - 4 if large else CHART_TEXT_PX),
            marker=dict(size=size, color=RUN_COLOURS[i % len(RUN_COLOURS)], opacity=0.85,
                        symbol=["diamond" if p.get("shared") else "circle" for p in mine],
                        line=dict(width=1, color="white")),
            customdata=[[chart_text(p["student"]), chart_text(p["architecture"]),
                         format_count(p["flops"]) if p.get("flops") else "—",
                         p["epochs"] if p.get("epochs") is not None else "—"] for p in mine],
            hovertemplate=("<b>%{customdata[0]}</b> · %{customdata[1]}<br>test accuracy %{y:.2%}<br>"
                           "%{x:,} parameters · %{customdata[2]} FLOPs<br>%{customdata[3]} epochs"
                           f"<extra>{ds}</extra>")))
    fig.update_layout(title=dict(text=title, font=dict(size=font + 4)), font=dict(size=font),
                      height=height or (620 if large else 440), margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(title="dataset", orientation="h", y=-0.2, font=dict(size=font)),
                      hoverlabel=dict(font_size=font),
                      xaxis=dict(title=dict(text="parameters (log scale)", font=dict(size=font)), type="log",
                                 tickfont=dict(size=font - 2), **parameter_ticks([p["parameters"] for p in points])),
                      yaxis=dict(title=dict(text="test accuracy", font=dict(size=font)),
                                 tickfont=dict(size=font - 2), **accuracy_ticks([p["test_accuracy"] for p in points])))
    if not points:
        fig.add_annotation(text="No finished runs yet", showarrow=False, font=dict(size=font + 4),
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return readable(fig)


_TICK_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def accuracy_ticks(values: Sequence[float], most: int = 7) -> dict[str, Any]:
    """Plotly y-axis settings for accuracies: a range around `values` and at most `most` ticks at a round step,
    each label distinct ("97.5 %, 98.0 %, 98.5 %" rather than "98 %, 98 %, 99 %")."""
    if not values:
        return {"tickformat": ".0%"}
    lo, hi = min(values), max(values)
    pad = max(0.002, (hi - lo) * 0.15)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    step = next((s for s in _TICK_STEPS if (hi - lo) / s <= most - 1), 0.2)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = [round(first + k * step, 6) for k in range(int((hi - first) / step + 1e-9) + 1)]
    decimals = max(0, -int(math.floor(math.log10(step * 100) + 1e-9)))
    return {"range": [lo, hi], "tickvals": ticks, "ticktext": [f"{t * 100:.{decimals}f} %" for t in ticks]}


def parameter_ticks(values: Sequence[float]) -> dict[str, Any]:
    """Plotly log-axis settings for parameter counts: ticks at 1, 2 and 5 × 10ⁿ around `values`, labelled
    "20k", "500k", "1M" (not a digit per decade)."""
    if not values:
        return {}
    lo, hi = min(values) / 1.6, max(values) * 1.6
    ticks = [m * 10 ** e for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1)
             for m in (1, 2, 5) if lo <= m * 10 ** e <= hi]

    def words(n: float) -> str:
        for unit, size in (("M", 1e6), ("k", 1e3)):
            if n >= size:
                return f"{n / size:g}{unit}"
        return f"{n:g}"

    return {"tickvals": ticks, "ticktext": [words(t) for t in ticks]} if len(ticks) >= 2 else {}


# Caption text on white: darker shades of the frame colours, readable on a projector.
RIGHT_TEXT = "#1b6e1b"
WRONG_TEXT = "#b3191b"
GRID_TEXT_PX = 14
_GRID_CSS = (
    ".cnnkit-grid{{display:flex;flex-wrap:wrap;gap:10px 8px;align-items:flex-start;max-width:{max_w}px}}"
    ".cnnkit-grid figure{{margin:0;width:{tile}px}}"
    ".cnnkit-grid img{{display:block;width:100%;height:auto;image-rendering:pixelated;box-sizing:border-box}}"
    ".cnnkit-grid figcaption{{font-size:{text}px;line-height:1.25;text-align:center;overflow-wrap:anywhere;"
    "margin-top:3px}}"
    ".cnnkit-grid-title{{font-size:{title}px;font-weight:600;margin:0 0 .5rem}}"
    "@media (max-width:640px){{.cnnkit-grid figure{{width:{phone_tile}px}}}}"
)


def _png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_grid_html(
    images: np.ndarray,
    captions: Sequence[str] | None = None,
    correct: Sequence[bool] | None = None,
    cols: int = 8,
    tile_px: int = 100,
    title: str = "",
) -> str:
    """Images in a grid that reflows to the screen, each with its caption underneath; with `correct`,
    a green or red frame and caption.

    `images`: uint8 (N, H, W, C) with C = 1 (grayscale) or 3 (colour), or (N, H, W). Each image is sent
    once as a small PNG at its own size and scaled by the browser without smoothing, so a pixel stays a
    pixel. At most `cols` tiles of `tile_px` a row on a wide screen, as many as fit on a narrow one
    (a phone gets ¾-size tiles); captions are text of GRID_TEXT_PX px ("<br>" starts a new line) that wraps
    inside its tile instead of running into the next one.
    """
    images = np.asarray(images)
    if images.ndim == 3:  # (N, H, W): grayscale without its channel axis
        images = images[..., None]
    n = len(images) if images.size else 0
    h, w = (images.shape[1], images.shape[2]) if n else (1, 1)
    frame = max(2, round(3 * tile_px / 100))
    gap = 8
    style = _GRID_CSS.format(max_w=max(1, min(cols, n or 1)) * (tile_px + gap), tile=tile_px, text=GRID_TEXT_PX,
                             title=GRID_TEXT_PX + 2, phone_tile=max(48, round(tile_px * 0.75)))
    parts = [f"<style>{style}</style>", "<div>"]
    if title:
        parts.append(f'<p class="cnnkit-grid-title">{html.escape(title)}</p>')
    parts.append('<div class="cnnkit-grid">')
    for i in range(n):
        caption = str(captions[i]) if captions is not None else ""
        lines = [html.escape(line) for line in caption.split("<br>")]
        alt = html.escape(" ".join(caption.split("<br>")), quote=True)
        if correct is not None:
            border = f"border:{frame}px solid {RIGHT_COLOUR if correct[i] else WRONG_COLOUR}"
            text_colour = RIGHT_TEXT if correct[i] else WRONG_TEXT
        else:
            border, text_colour = "border:1px solid #ddd", "inherit"
        cap = (f'<figcaption style="color:{text_colour}">{"<br>".join(lines)}</figcaption>' if caption else "")
        parts.append(f'<figure><img src="{_png_data_uri(images[i])}" width="{w}" height="{h}" alt="{alt}" '
                     f'style="{border}">{cap}</figure>')
    parts.append("</div></div>")
    return "".join(parts)


# --- per-class report bars ----------------------------------------------------------------------
def per_class_figure(report: pd.DataFrame, title: str = "Precision and recall per class") -> go.Figure:
    """Grouped bars of precision, recall and F1 for each class (the report's class rows).

    Low recall: the model misses that class; low precision: it says that class
    when it is something else.
    """
    summary_rows = ("accuracy", "macro avg", "weighted avg", "micro avg")
    classes = report.drop(index=[r for r in summary_rows if r in report.index])
    fig = go.Figure()
    for column, colour in (("precision", TRAIN_COLOUR), ("recall", VALIDATION_COLOUR), ("f1-score", BEST_COLOUR)):
        fig.add_trace(
            go.Bar(
                x=[str(i) for i in classes.index],
                y=classes[column],
                name=column,
                marker_color=colour,
                hovertemplate=f"%{{x}}<br>{column} %{{y:.3f}}<extra></extra>",
            )
        )
    low = float(np.nanmin(classes[["precision", "recall"]].to_numpy())) if len(classes) else 0.0
    fig.update_layout(
        title=title,
        barmode="group",
        xaxis=class_axis(list(classes.index)),  # every class named; "0".."9" stay labels, not numbers
        yaxis=dict(title="score", range=[max(0.0, low - 0.1) if low > 0.5 else 0.0, 1.0]),
        margin=_MARGIN,
        height=380,
        legend=dict(orientation="h", y=-0.25),
    )
    return readable(fig)


# --- class probabilities for one image (draw page) ------------------------------------------------
def probability_figure(
    probabilities: Sequence[float], class_names: Sequence[str], title: str = "Probability of each class"
) -> go.Figure:
    """Horizontal bars, one per class in the dataset's order, the predicted class highlighted.

    Every class is shown, so a student sees where the doubt lies (a 4 that is also
    a bit of a 9) and not only the winner.
    """
    p = np.asarray(probabilities, dtype=float)
    names = [chart_text(n) for n in class_names]
    top = int(np.argmax(p)) if len(p) else -1
    colours = [RIGHT_COLOUR if i == top else TRAIN_COLOUR for i in range(len(p))]
    fig = go.Figure(
        go.Bar(
            x=p,
            y=names,
            orientation="h",
            marker_color=colours,
            text=[f"{v:.1%}" for v in p],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis=dict(title="probability", range=[0, 1.12], tickformat=".0%"),
        # First class at the top, as in a list.
        yaxis=dict(autorange="reversed", type="category"),
        margin=_MARGIN,
        height=max(260, 28 * len(p) + 80),
        showlegend=False,
    )
    return readable(fig)


# --- one feature map, clickable (draw page's convolution) ------------------------------------------
def feature_map_figure(values: np.ndarray, picked: tuple[int, int] | None = None, size: int = 252,
                       title: str | None = None) -> go.Figure:
    """One feature map (H, W) as a grid of square cells, grey by value (black 0, white its maximum), the
    `picked` (row, column) framed in red; hovering a cell says its position and number.

    The cells are markers, not a heatmap, because a click on a marker is reported as a selected point
    (x = column, y = row; `picked_cell` reads it back) and a click on a heatmap is not.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or not v.size:
        raise ValueError(f"a feature map is one (rows, columns) array, not shape {v.shape}")
    h, w = v.shape
    rows, cols = np.divmod(np.arange(h * w), w)
    margin = 4
    cell = (size - 2 * margin) / max(h, w)
    low, high = min(0.0, float(v.min())), float(v.max())
    fig = go.Figure(go.Scatter(
        x=cols, y=rows, mode="markers", customdata=v.ravel(),
        marker=dict(symbol="square", size=cell, color=v.ravel(), colorscale="gray", cmin=low,
                    cmax=high if high > low else low + 1.0, line=dict(width=0)),
        selected=dict(marker=dict(opacity=1.0)), unselected=dict(marker=dict(opacity=1.0)),
        hovertemplate="row %{y}, column %{x}: %{customdata:.4f}<extra></extra>", showlegend=False))
    if picked is not None:
        r, c = picked
        fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
                      line=dict(color="rgb(230, 40, 40)", width=max(2, int(cell // 4))))
    axis = dict(showgrid=False, zeroline=False, showticklabels=False, fixedrange=True, ticks="")
    fig.update_layout(
        width=size, height=size + (30 if title else 0), margin=dict(l=margin, r=margin, b=margin,
                                                                    t=margin + (30 if title else 0)),
        title=dict(text=title, font=dict(size=14)) if title else None,
        xaxis=dict(axis, range=[-0.5, w - 0.5]), yaxis=dict(axis, range=[h - 0.5, -0.5]),
        plot_bgcolor="white", dragmode=False, hovermode="closest",
    )
    return readable(fig)


def picked_cell(points: Sequence[Mapping], shape: tuple[int, int]) -> tuple[int, int] | None:
    """The (row, column) a student clicked on `feature_map_figure`: the last of a chart selection's points
    that lies on the (rows, columns) map, or None when none does (an emptied selection, say)."""
    h, w = shape
    for point in reversed(list(points)):
        x, y = point.get("x"), point.get("y")
        if x is None or y is None:
            continue
        r, c = int(round(float(y))), int(round(float(x)))
        if 0 <= r < h and 0 <= c < w:
            return r, c
    return None
