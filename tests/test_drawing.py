"""cnnkit.drawing: a drawing prepared the way MNIST was, whatever its size, place, pen or polarity."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage
from strokes import DIGITS, dot, draw_digit, rerender

from cnnkit import datasets, drawing
from cnnkit.errors import DrawingError, UserError


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


REFERENCE = draw_digit("7")  # 200 px tall, centred, pen 20, transparent canvas

VARIANTS = {
    "large and centred": dict(size=240, width=24),
    "small in the top-left corner": dict(size=60, left=8, top=8),
    "small in the bottom-right corner, thin pen": dict(size=70, left=200, top=195, width=5),
    "thick pen": dict(width=45),
    "thin pen": dict(width=6),
    "black on white paper": dict(polarity="dark_on_light"),
    "white on black like MNIST": dict(polarity="light_on_dark"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_the_same_digit_drawn_differently_gives_nearly_the_same_input(name):
    ref = drawing.prepare_drawing(REFERENCE).x
    got = drawing.prepare_drawing(draw_digit("7", **VARIANTS[name])).x
    assert got.shape == (28, 28, 1) and got.dtype == np.float32
    assert cosine(ref, got) > 0.85, name
    # …and closer to the reference 7 than any other digit drawn the reference way.
    for other in ("1", "4", "0"):
        assert cosine(ref, got) > cosine(ref, drawing.prepare_drawing(draw_digit(other)).x) + 0.3


def test_naive_shrinking_loses_a_small_off_centre_digit():
    # The reason for the MNIST recipe: shrunk whole, a small digit in a corner is a speck
    # far from where MNIST digits sit, and shares almost nothing with the centred one.
    small = draw_digit("7", size=60, left=8, top=8)
    naive_ref = drawing.prepare_drawing(REFERENCE, mode="naive").x
    naive_small = drawing.prepare_drawing(small, mode="naive").x
    assert cosine(naive_ref, naive_small) < 0.2
    assert cosine(drawing.prepare_drawing(REFERENCE).x, drawing.prepare_drawing(small).x) > 0.85


def test_polarities_give_identical_inputs():
    inputs = [drawing.prepare_drawing(draw_digit("4", polarity=p)).x
              for p in ("transparent", "dark_on_light", "light_on_dark")]
    np.testing.assert_allclose(inputs[0], inputs[1], atol=1e-6)
    np.testing.assert_allclose(inputs[0], inputs[2], atol=1e-6)


def test_coloured_pen_on_transparent_canvas_is_ink():
    canvas = draw_digit("4").copy()
    canvas[..., :3] = np.where(canvas[..., 3:] > 0, [255, 40, 40], 0)  # red pen
    np.testing.assert_allclose(drawing.prepare_drawing(canvas).x, drawing.prepare_drawing(draw_digit("4")).x, atol=1e-6)


@pytest.mark.parametrize("digit", list(DIGITS))
def test_prepared_input_looks_like_mnist(digit):
    prepared = drawing.prepare_drawing(draw_digit(digit, size=120, left=20, top=140))
    x = prepared.x[..., 0]
    assert 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    rows = np.flatnonzero(x.max(axis=1) > 0)
    cols = np.flatnonzero(x.max(axis=0) > 0)
    # Longer side 20 px (the anti-aliased edge may add one), inside the 28×28 frame.
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (20, 21)
    cy, cx = ndimage.center_of_mass(x)
    # Whole-pixel shift, as MNIST: the centre of mass is within half a pixel of (14, 14)
    # unless the digit had to be kept inside the frame.
    assert abs(cy - 14) <= 0.5 + 1e-6 and abs(cx - 14) <= 2.5


def test_steps_are_returned_in_order_and_end_with_the_input():
    prepared = drawing.prepare_drawing(draw_digit("7", size=100, left=150, top=20))
    titles = [s.title for s in prepared.steps]
    assert titles == ["Your drawing", "Ink", "Cropped", "Stroke evened", "Scaled to 20 px", "Centred in 28×28"]
    np.testing.assert_array_equal(prepared.steps[-1].image, prepared.x[..., 0])
    for step in prepared.steps:
        assert step.image.dtype == np.float32 and 0 <= step.image.min() and step.image.max() <= 1
        assert step.caption
    assert prepared.steps[0].image.shape == (280, 280)
    assert max(prepared.steps[4].image.shape) == 20
    # The transparent canvas is shown as the student saw it: dark ink on white.
    assert prepared.steps[0].image[0, 0] == 1.0 and prepared.steps[1].image[0, 0] == 0.0
    assert "Transparent" in prepared.note
    assert prepared.display.shape == (28, 28)


def test_naive_mode_steps():
    prepared = drawing.prepare_drawing(REFERENCE, mode="naive")
    assert [s.title for s in prepared.steps] == ["Your drawing", "Ink", "Shrunk to 28×28"]
    assert prepared.mode == "naive" and prepared.x.shape == (28, 28, 1)
    with pytest.raises(ValueError):
        drawing.prepare_drawing(REFERENCE, mode="sideways")


def test_stroke_evening_can_be_turned_off():
    prepared = drawing.prepare_drawing(draw_digit("7", width=6), even_strokes=False)
    assert "Stroke evened" not in [s.title for s in prepared.steps]
    assert prepared.x.shape == (28, 28, 1)


def test_stroke_width_matches_mnist():
    # STROKE_TARGET was calibrated on MNIST itself: re-rendered at canvas size and prepared,
    # real digits keep about the ink they had (the pen width neither grows nor shrinks).
    ds = datasets.offline_sample()
    x = ds.x_test[:100, ..., 0].astype(np.float32) / 255.0
    prepared = np.stack([drawing.prepare_drawing(rerender(d)).x[..., 0] for d in x])
    assert prepared.sum(axis=(1, 2)).mean() == pytest.approx(x.sum(axis=(1, 2)).mean(), rel=0.12)
    # And they are still the same digits, pixel for pixel, up to anti-aliasing.
    assert np.mean([cosine(a, b) for a, b in zip(prepared, x, strict=True)]) > 0.85


@pytest.mark.parametrize(
    "image, words",
    [
        (None, "Draw a digit"),
        (np.zeros((280, 280, 4), np.uint8), "empty"),
        (np.full((280, 280, 4), 255, np.uint8), "empty"),  # opaque white paper, nothing on it
        (dot(), "single dot"),
        (dot(width=45, x=30, y=250), "single dot"),
    ],
    ids=["none", "transparent blank", "white blank", "dot", "big dot in a corner"],
)
def test_blank_canvas_and_single_dot_are_refused(image, words):
    for mode in ("mnist", "naive"):
        with pytest.raises(DrawingError, match=words) as err:
            drawing.prepare_drawing(image, mode=mode)
        assert isinstance(err.value, UserError)


def test_a_few_specks_are_refused():
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[[20, 100, 200], [30, 150, 250], 3] = 255
    with pytest.raises(DrawingError, match="empty"):
        drawing.prepare_drawing(canvas)
    with pytest.raises(DrawingError):
        drawing.prepare_drawing(dot())
    drawing.prepare_drawing(REFERENCE)  # a real digit passes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(50, 260),
    width=st.integers(5, 40),
    fx=st.floats(0, 1),
    fy=st.floats(0, 1),
    polarity=st.sampled_from(["transparent", "dark_on_light", "light_on_dark"]),
)
def test_any_size_place_pen_and_polarity_gives_the_reference_input(size, width, fx, fy, polarity):
    width = min(width, size // 4)  # a pen wider than a quarter of the digit fills the digit in
    left, top = fx * (280 - size - width) + width / 2, fy * (280 - size - width) + width / 2
    got = drawing.prepare_drawing(draw_digit("4", size=size, left=left, top=top, width=max(width, 3),
                                             polarity=polarity))
    assert cosine(drawing.prepare_drawing(draw_digit("4")).x, got.x) > 0.8


# --- pictures for the other datasets ----------------------------------------------------------
def test_photo_for_cifar_is_centre_cropped_colour():
    photo = np.zeros((60, 100, 3), np.uint8)
    photo[:, :20] = [255, 0, 0]  # a red band on the left, cut off by the centre crop
    photo[:, 20:80] = [0, 0, 255]
    prepared = drawing.prepare_photo(photo, (32, 32, 3))
    assert prepared.x.shape == (32, 32, 3) and prepared.x.dtype == np.float32
    np.testing.assert_allclose(prepared.x[..., 2], 1.0, atol=1e-6)
    np.testing.assert_allclose(prepared.x[..., 0], 0.0, atol=1e-6)
    assert [s.title for s in prepared.steps] == ["Your picture", "Made square", "Resized to 32×32"]
    assert prepared.display.shape == (32, 32, 3)


def test_photo_for_fashion_is_padded_grey_and_inverted_from_a_light_background():
    photo = np.full((80, 40, 3), 255, np.uint8)  # a tall dark item on white
    photo[10:70, 10:30] = 30
    prepared = drawing.prepare_photo(photo, (28, 28, 1))
    x = prepared.x[..., 0]
    assert prepared.x.shape == (28, 28, 1)
    assert x[0, 0] == pytest.approx(0.0, abs=1e-6)  # background black after inversion
    assert x[14, 14] > 0.8  # the item light, in the middle
    assert x[14, 2] == pytest.approx(0.0, abs=1e-6)  # padded sides, nothing cut off
    assert "inverted" in prepared.note
    assert prepared.steps[-1].title == "Grey, inverted"


def test_photo_with_dark_background_is_kept_and_rgba_is_flattened():
    item = np.zeros((28, 28, 4), np.uint8)
    item[..., 3] = 255
    item[5:20, 5:20, :3] = 200
    prepared = drawing.prepare_photo(item, (28, 28, 1))
    assert prepared.x[10, 10, 0] == pytest.approx(200 / 255, abs=0.02) and prepared.x[0, 0, 0] == 0
    assert "kept" in prepared.note
    with pytest.raises(DrawingError, match="Choose a picture"):
        drawing.prepare_photo(None, (28, 28, 1))


def test_prepare_for_picks_the_recipe_from_the_dataset():
    assert drawing.uses_drawing("mnist", (28, 28, 1))
    assert not drawing.uses_drawing("fashion_mnist", (28, 28, 1))
    assert not drawing.uses_drawing("cifar10", (32, 32, 3))
    assert drawing.prepare_for(REFERENCE, "mnist", (28, 28, 1)).mode == "mnist"
    assert drawing.prepare_for(REFERENCE, "fashion_mnist", (28, 28, 1)).mode == "photo"
    assert drawing.prepare_for(REFERENCE, "cifar10", (32, 32, 3)).x.shape == (32, 32, 3)


# --- files and arrays -------------------------------------------------------------------------
def test_read_image_from_bytes_and_path(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(REFERENCE).save(buf, format="PNG")
    arr = drawing.read_image(buf.getvalue())
    np.testing.assert_array_equal(arr, REFERENCE)
    path = tmp_path / "seven.png"
    path.write_bytes(buf.getvalue())
    np.testing.assert_array_equal(drawing.read_image(path), REFERENCE)
    with pytest.raises(DrawingError, match="not an image"):
        drawing.read_image(b"certainly not a png")
    with pytest.raises(DrawingError, match="no file"):
        drawing.read_image(tmp_path / "missing.png")


def test_to_array_accepts_pil_float_and_rejects_nonsense():
    assert drawing.to_array(Image.new("P", (5, 4))).shape == (4, 5, 3)
    floats = np.full((4, 4, 1), 0.5, np.float32)
    assert drawing.to_array(floats).dtype == np.uint8 and drawing.to_array(floats)[0, 0] == 128
    with pytest.raises(DrawingError, match="not a picture"):
        drawing.to_array(np.zeros((4, 4, 2), np.uint8))


def test_enlarge_keeps_pixels_crisp():
    small = np.array([[0.0, 1.0], [0.5, 0.0]], np.float32)
    big = drawing.enlarge(small, 8)
    assert big.shape == (8, 8) and big.dtype == np.uint8
    assert set(np.unique(big)) == {0, 128, 255}
    assert big[:4, 4:].min() == 255


def test_article_and_photo_caption():
    from cnnkit import drawing

    assert [drawing.article(w) for w in ("7", "8", "11", "18", "1", "airplane", "truck", "Ankle boot", "unicorn")] \
        == ["a", "an", "an", "an", "a", "an", "a", "an", "a"]
    img = np.zeros((60, 40), dtype=np.uint8)
    img[10:50, 15:25] = 255
    assert drawing.prepare_for(img, "mnist", (28, 28, 1)).steps[0].title == "Your picture"
    assert drawing.prepare_drawing(img).steps[0].title == "Your drawing"


def test_a_test_image_is_the_dataset_image_scaled_to_0_1_with_its_label(tiny_ds):
    for ds in (tiny_ds(), tiny_ds(shape=(32, 32, 3))):
        for i in (0, 7, len(ds.x_test) - 1):
            prepared, label = drawing.prepare_test_image(ds, i)
            assert label == ds.class_names[int(ds.y_test[i])]
            assert prepared.x.dtype == np.float32 and prepared.x.shape == ds.x_test[i].shape
            # exactly what training feeds the model for this image
            np.testing.assert_array_equal(prepared.x, datasets.to_float(ds.x_test[i : i + 1])[0])
            assert prepared.mode == "test" and len(prepared.steps) == 1
            np.testing.assert_array_equal(prepared.steps[0].image, prepared.display)
    ds = tiny_ds(n_test=50)
    for bad in (-1, 50, 2.0, True):
        with pytest.raises(DrawingError, match="has test images 0 to 49"):
            drawing.prepare_test_image(ds, bad)


def test_what_a_student_draws_is_named_by_the_models_classes():
    from cnnkit.drawing import drawn_noun, prepare_drawing

    assert drawn_noun([str(i) for i in range(10)]) == "digit" and drawn_noun(None) == "digit"
    assert drawn_noun(["circle", "square", "triangle"]) == "circle, square or triangle"
    assert drawn_noun(list("ABCDEFG")) == "drawing"
    import pytest

    from cnnkit.errors import DrawingError

    with pytest.raises(DrawingError, match="Draw a circle, square or triangle on the canvas first"):
        prepare_drawing(None, what=drawn_noun(["circle", "square", "triangle"]))
