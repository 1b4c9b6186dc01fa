"""The network as a picture (issue 24, part 1): blocks from the summary, to scale, red where a problem is."""

from __future__ import annotations

from cnnkit import network_picture as npic
from cnnkit import presets
from cnnkit.spec import LayerSpec, ModelSpec


def _shapes_of(fig, kind="rect"):
    return [s for s in fig.layout.shapes if s.type == kind]


def test_one_block_per_layer_with_its_shape_and_parameters():
    spec = presets.get("single_conv", (28, 28, 1), 10).spec
    bs = npic.blocks(spec)
    rows = spec.summary().rows
    assert len(bs) == len(rows) + 1 and bs[0].title == "Input" and bs[0].shape_text == "28×28×1"
    for b, r in zip(bs[1:], rows, strict=True):
        assert b.index == r.index and b.params == r.params and b.shape == tuple(r.output_shape)
    assert bs[1].kind == "conv" and bs[2].title == "MaxPool" and bs[-1].kind == "dense"
    fig = npic.network_figure(bs)
    # every layer is one clickable point (its index in customdata); every block has its words
    assert list(fig.data[0].customdata) == [r.index for r in rows]
    texts = [a.text for a in fig.layout.annotations if "<b>" in a.text]
    numbers = [a.text for a in fig.layout.annotations if "<b>" not in a.text]
    assert numbers == [str(r.index + 1) for r in rows] and len(texts) == len(bs)
    assert "26×26×32" in texts[1] and "320 params" in texts[1]
    words = npic.picture_text(bs)
    assert words.startswith("The network, layer by layer: input 28×28×1 → Conv2D 26×26×32 → MaxPooling2D")


def test_blocks_are_drawn_to_scale():
    spec = ModelSpec((32, 32, 3), [LayerSpec.new("Conv2D", filters=64, kernel_size=3, padding="same"),
                                   LayerSpec.new("MaxPooling2D"), LayerSpec.new("Conv2D", filters=8, kernel_size=3),
                                   LayerSpec.new("Flatten"), LayerSpec.new("Dense", units=10)])
    fig = npic.network_figure(npic.blocks(spec), per_row=10)
    faces = _shapes_of(fig)   # one front face per feature map, one bar per vector, in order
    h = [f.y1 - f.y0 for f in faces]
    w = [f.x1 - f.x0 for f in faces]
    # input 32×32 and the first conv (32×32) the same face; pooling (16×16) smaller; the last conv (14×14) smaller
    assert abs(h[0] - h[1]) < 1e-9 and h[2] < h[1] and h[3] < h[2]
    # depth follows the channels: 64 channels deeper than 3, 8 in between
    sides = _shapes_of(fig, "path")[1::2]
    depth = [float(s.path.split("L ")[1].split(",")[0]) - float(s.path.split("M ")[1].split(",")[0]) for s in sides]
    assert depth[1] > depth[3] > depth[0]
    # Flatten (1,568 values) a taller bar than Dense (10), both thin
    assert h[4] > h[5] and w[4] == w[5] < w[0]


def test_a_problem_layer_is_red_with_its_sentence():
    spec = presets.get("single_conv", (28, 28, 1), 10).spec.set_param(4, "units", 7)
    by_layer = spec.problems_by_layer(10)
    bs = npic.blocks(spec, by_layer)
    red = [b for b in bs if b.colour == npic.PROBLEM_COLOUR]
    assert [b.index for b in red] == [4] and red[0].problem
    assert npic.problem_lines(bs) == [f"Layer 5 (red): {' '.join(by_layer[4])}"]
    fig = npic.network_figure(bs)
    assert sum(1 for s in fig.layout.shapes if s.fillcolor == npic.PROBLEM_COLOUR) == 1
    assert "(problem)" in npic.picture_text(bs)


def test_twenty_layers_fit_a_projector():
    spec = presets.get("lecture", (28, 28, 1), 10).spec
    while len(spec.layers) < 20:
        spec = spec.insert_layer(len(spec.layers) - 1, "Dropout")
    fig = npic.network_figure(npic.blocks(spec), selected=3)
    assert fig.layout.height <= 600   # 5 rows of 5 under the totals at 720 px
    framed = [s for s in fig.layout.shapes if s.line.width == 3]
    assert len(framed) == 3           # the selected slab: its face, top and side
