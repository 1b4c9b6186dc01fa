"""Turn a drawing or a picture into a model input, the way the dataset was made.

MNIST digits were not simply shrunk: each was cropped to its ink, scaled so its
longer side is 20 pixels (keeping the aspect ratio, with anti-aliasing), placed
in a 28×28 frame and shifted so its centre of mass sits at the centre. A canvas
shrunk straight to 28×28 looks nothing like that, which is why a digit drawn
small or off-centre is misread. `prepare_drawing` repeats MNIST's recipe and
returns every step so the page can show it; `prepare_drawing(..., mode="naive")`
is the shrink-only recipe, for comparison. `prepare_photo` turns any picture
into the shape of Fashion-MNIST or CIFAR-10 images.

Pure numpy / Pillow / scipy: no TensorFlow, no Streamlit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image
from scipy import ndimage

from cnnkit import limits
from cnnkit.errors import DrawingError

if TYPE_CHECKING:
    from cnnkit.datasets import Dataset

# MNIST's recipe: the digit's longer side is scaled to BOX pixels inside a FRAME×FRAME
# image whose centre of mass is at CENTRE (MNIST's own digits average (13.97, 14.01)).
BOX = 20
FRAME = 28
CENTRE = 14.0
# Stroke width, in pixels of the 20-pixel box, that MNIST digits have; canvas strokes
# are thickened or thinned to it so a thin pen and a fat brush give the same input.
# Calibrated on the offline sample (see tests/test_drawing.py::test_stroke_width_matches_mnist).
STROKE_TARGET = 2.8
# Ink above INK_LEVEL counts for the bounding box; above MASK_LEVEL it is a stroke pixel.
INK_LEVEL = 0.2
MASK_LEVEL = 0.5
# Fewer stroke pixels than this fraction of the canvas means "nothing drawn yet".
MIN_INK_FRACTION = 0.002
# Large crops are shrunk to this many pixels before measuring and evening strokes.
WORK = 80
# A drawing whose extent is under this many stroke widths is a dot or a blob, not a digit.
MIN_EXTENT_IN_STROKES = 2.0

Mode = Literal["mnist", "naive"]
ImageLike = np.ndarray | Image.Image


@dataclass(frozen=True)
class Step:
    """One stage of the preparation, ready to show: float32 in [0, 1], (h, w) or (h, w, 3)."""

    title: str
    image: np.ndarray
    caption: str


@dataclass(frozen=True)
class PreparedImage:
    """A model input and how it was made."""

    x: np.ndarray  # (H, W, C) float32 in [0, 1]: what the model sees
    steps: tuple[Step, ...]  # from the original to the final input
    mode: str  # "mnist", "naive", "photo" (or "test" for a dataset image used as it is)
    note: str  # one sentence on what was detected (polarity, background)

    @property
    def display(self) -> np.ndarray:
        """The model input as a 2-D (grey) or 3-D (colour) array, for st.image."""
        return self.x[..., 0] if self.x.shape[-1] == 1 else self.x


# --- reading images ----------------------------------------------------------------
def to_array(image: ImageLike | None, what: str = "digit") -> np.ndarray:
    """A canvas array, PIL image or None as a uint8 array (H, W) / (H, W, 3) / (H, W, 4); `what` is what the
    canvas is for (a digit, or the class a collection asks for), named in the sentence for an empty one."""
    if image is None:
        raise DrawingError(f"Draw {article(what)} {what} on the canvas first.")
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image = np.asarray(image)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or min(arr.shape[:2]) < 1:
        raise DrawingError(f"An image of shape {arr.shape} is not a picture: give a grey, RGB or RGBA image.")
    if arr.dtype != np.uint8:
        # Floats in [0, 1] (a saved model input) or wider integers: bring to 0-255.
        arr = arr.astype(np.float32)
        if arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr


def read_image(source: str | Path | bytes) -> np.ndarray:
    """Read a PNG/JPEG/... file (path or bytes) into a uint8 array; DrawingError if unreadable."""
    try:
        if isinstance(source, (bytes, bytearray)):
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(Path(source))
        limits.check_image_size(*img.size, DrawingError)  # from the header, before a pixel is decoded
        img.load()
    except FileNotFoundError:
        raise DrawingError(f"There is no file {source}: check the path.") from None
    except Image.DecompressionBombError as err:
        raise DrawingError(f"The picture is far too large to open ({err}). Resize it (a few hundred pixels a side "
                           "is plenty) and try again.") from None
    except (OSError, ValueError, SyntaxError):
        name = "The uploaded file" if isinstance(source, (bytes, bytearray)) else f"{source}"
        raise DrawingError(f"{name} is not an image Pillow can read: give a PNG or JPEG picture.") from None
    return to_array(img)


def _grey(arr: np.ndarray) -> np.ndarray:
    """Luminance 0-255 as float32 (ITU-R 601, as Pillow's "L")."""
    if arr.ndim == 2:
        return arr.astype(np.float32)
    rgb = arr[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def ink_map(image: ImageLike | None) -> tuple[np.ndarray, str]:
    """Ink strength in [0, 1] (1 = full ink) whatever the polarity, and a sentence saying what was found.

    A canvas with a transparent background carries the ink in its alpha channel.
    An opaque image's background is its border's median grey: dark ink on a light
    background is inverted, light ink on a dark one (MNIST's way) is kept.
    """
    arr = to_array(image)
    if arr.ndim == 3 and arr.shape[-1] == 4 and _border(arr[..., 3]).min() < 250:
        # Transparent background (the canvas's default): whatever colour the pen, ink = opacity.
        ink = arr[..., 3].astype(np.float32) / 255.0
        return ink, "Transparent background: the ink is whatever was drawn on it."
    if arr.ndim == 3 and arr.shape[-1] == 4:
        # Opaque RGBA: composite is the RGB itself.
        arr = arr[..., :3]
    grey = _grey(arr)
    background = float(np.median(_border(grey)))
    if background >= 128:
        ink = (background - grey) / max(background, 1.0)
        note = "Dark ink on a light background: inverted to MNIST's light ink on black."
    else:
        ink = (grey - background) / max(255.0 - background, 1.0)
        note = "Light ink on a dark background, as in MNIST: kept as it is."
    return np.clip(ink, 0.0, 1.0).astype(np.float32), note


# --- checks and measures -----------------------------------------------------------
def _bbox(values: np.ndarray, level: float) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((values > level).any(axis=1))
    cols = np.flatnonzero((values > level).any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _inside_distance(mask: np.ndarray) -> np.ndarray:
    """Distance from each stroke pixel to the background (1 on the stroke's edge)."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def stroke_width(mask: np.ndarray, inside: np.ndarray | None = None) -> float:
    """Typical stroke width of a binary drawing, in its pixels.

    Across a stroke w pixels wide the distances to the background run 1, 2, …, w/2
    and back, so their mean over the stroke is w/4 + 1/2.
    """
    if not mask.any():
        return 0.0
    inside = _inside_distance(mask) if inside is None else inside
    return max(1.0, 4.0 * float(inside[mask].mean()) - 2.0)


def _refuse_dot(mask: np.ndarray, inside: np.ndarray, what: str) -> None:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    # Twice the largest distance to the background is the thickest stroke: a dot is as wide as it is long.
    thickness = 2.0 * float(inside.max())
    if extent < MIN_EXTENT_IN_STROKES * thickness:
        raise DrawingError(
            f"That looks like a single dot, not {article(what)} {what}: draw the whole {what}, filling most of "
            "the canvas.")


def _refuse_blank(ink: np.ndarray, what: str) -> None:
    if int(np.count_nonzero(ink > MASK_LEVEL)) < max(4, MIN_INK_FRACTION * ink.size):
        raise DrawingError(f"The canvas is (nearly) empty: draw {article(what)} {what} first.")


# --- MNIST's recipe ------------------------------------------------------------------
def _crop(ink: np.ndarray) -> np.ndarray:
    top, bottom, left, right = _bbox(ink, INK_LEVEL)
    return ink[top:bottom, left:right]


def _to_work_scale(crop: np.ndarray) -> np.ndarray:
    """Shrink a large crop to WORK pixels on its longer side: plenty for strokes that end up
    20 pixels tall, and it keeps the distance transforms to a fraction of a millisecond."""
    longer = max(crop.shape)
    if longer <= WORK:
        return crop
    factor = WORK / longer
    h, w = crop.shape
    return np.clip(_resize(crop, max(1, round(w * factor)), max(1, round(h * factor))), 0.0, 1.0)


def even_stroke(
    mask: np.ndarray, target: float | None = None, inside: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Thicken or thin a cropped binary drawing's strokes so that, once scaled into the
    20-pixel box, they are `target` pixels wide like MNIST's pen.

    Returns the new strokes as a 0/1 float32 image re-cropped to them (thickening grows
    the box, thinning shrinks it) and the old width at 20-pixel scale.
    """
    target = STROKE_TARGET if target is None else target
    inside = _inside_distance(mask) if inside is None else inside
    width = stroke_width(mask, inside)
    extent = max(mask.shape)
    # The centre line spans (extent - width); after the change the box is (centre + new width)
    # and we want new width / box = target / BOX.
    centre = max(extent - width, 1.0)
    new_width = target * centre / (BOX - target)
    radius = (new_width - width) / 2.0
    if radius > 0.5:
        pad = int(np.ceil(radius)) + 1
        padded = np.pad(mask, pad)
        mask = ndimage.distance_transform_edt(~padded) <= radius
    elif radius < -0.5:
        thinned = inside > -radius
        # Never thin a drawing away: keep it when thinning would remove most of it.
        if thinned.sum() >= 0.25 * mask.sum():
            mask = thinned
    top, bottom, left, right = _bbox(mask, 0.5)
    return mask[top:bottom, left:right].astype(np.float32), width * BOX / extent


def _resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize of a float image (Pillow widens its filter when shrinking)."""
    if values.ndim == 3:
        return np.stack([_resize(values[..., c], width, height) for c in range(values.shape[-1])], axis=-1)
    img = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _scale_into_box(crop: np.ndarray) -> np.ndarray:
    h, w = crop.shape
    factor = BOX / max(h, w)
    new_h, new_w = max(1, round(h * factor)), max(1, round(w * factor))
    scaled = np.clip(_resize(crop, new_w, new_h), 0.0, 1.0)
    peak = float(scaled.max())
    # MNIST digits reach full ink; a thin stroke averaged down would not.
    return scaled / peak if peak > 0 else scaled


def _centre_by_mass(patch: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Paste the patch into FRAME×FRAME so its centre of mass lands on CENTRE (whole pixels, as MNIST)."""
    h, w = patch.shape
    cy, cx = ndimage.center_of_mass(patch)
    top = int(np.clip(round(CENTRE - cy), 0, FRAME - h))
    left = int(np.clip(round(CENTRE - cx), 0, FRAME - w))
    frame = np.zeros((FRAME, FRAME), dtype=np.float32)
    frame[top : top + h, left : left + w] = patch
    return frame, (top, left)


def prepare_drawing(image: ImageLike | None, mode: Mode = "mnist", even_strokes: bool = True,
                    source: str = "Your drawing", what: str = "digit") -> PreparedImage:
    """Canvas RGBA (or any digit picture) → MNIST-style (28, 28, 1) float32 input, with each step.

    mode="mnist": ink → crop to the ink → (even the stroke width) → longer side to 20 px →
    centre of mass at the centre of 28×28. mode="naive": ink → shrink the whole canvas to 28×28.
    Raises DrawingError for a blank canvas or a single dot. `source` names the first step
    ("Your drawing" for the canvas, "Your picture" for an uploaded photo of a digit); `what` is what is drawn,
    as the refusals name it ("digit", or a collection's class such as "circle").
    """
    if mode not in ("mnist", "naive"):
        raise ValueError(f"unknown mode {mode!r}")
    arr = to_array(image, what)
    ink, note = ink_map(arr)
    _refuse_blank(ink, what)
    crop = _crop(ink)
    work = _to_work_scale(crop)
    mask = work > MASK_LEVEL
    inside = _inside_distance(mask)
    _refuse_dot(mask, inside, what)

    transparent = arr.ndim == 3 and arr.shape[-1] == 4 and _border(arr[..., 3]).min() < 250
    # A transparent canvas is shown as the student saw it: dark ink on white.
    shown = 1.0 - ink if transparent else _grey(arr) / 255.0
    steps = [
        Step(source, shown, f"{arr.shape[1]}×{arr.shape[0]} pixels"),
        Step("Ink", ink, "light ink on black, as MNIST stores digits"),
    ]
    if mode == "naive":
        small = np.clip(_resize(ink, FRAME, FRAME), 0.0, 1.0)
        steps.append(Step("Shrunk to 28×28", small, "the whole canvas squeezed, nothing centred"))
        return PreparedImage(x=small[..., None], steps=tuple(steps), mode="naive", note=note)

    steps.append(Step("Cropped", crop, f"to the ink's box: {crop.shape[1]}×{crop.shape[0]} pixels"))
    if even_strokes:
        crop, before = even_stroke(mask, inside=inside)
        steps.append(
            Step("Stroke evened", crop, f"pen width {before:.1f} → {STROKE_TARGET:.1f} pixels at 20-pixel scale")
        )
    else:
        crop = work
    patch = _scale_into_box(crop)
    steps.append(Step("Scaled to 20 px", patch, f"{patch.shape[1]}×{patch.shape[0]}, aspect ratio kept"))
    frame, (y0, x0) = _centre_by_mass(patch)
    steps.append(Step("Centred in 28×28", frame, f"placed {x0} px from the left, {y0} from the top: "
                                                  "its centre of mass in the middle"))
    return PreparedImage(x=frame[..., None], steps=tuple(steps), mode="mnist", note=note)


# --- other datasets: photos and pictures -------------------------------------------
def prepare_photo(image: ImageLike | None, image_shape: tuple[int, int, int]) -> PreparedImage:
    """Any picture → (H, W, C) float32 input in the dataset's shape, with each step.

    Grey datasets (Fashion-MNIST) show a whole item light-on-black, so the picture is
    padded to a square with its background and inverted when that background is light.
    Colour datasets (CIFAR-10) are photos that fill the frame, so the picture is
    centre-cropped to a square.
    """
    if image is None:
        raise DrawingError("Choose a picture first.")
    arr = to_array(image)
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ValueError(f"unsupported channel count {channels}")
    if arr.ndim == 3 and arr.shape[-1] == 4:
        # Flatten transparency onto white, as an image viewer shows it.
        alpha = arr[..., 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    rgb = np.repeat(arr[..., None], 3, axis=-1) if arr.ndim == 2 else arr
    values = rgb.astype(np.float32) / 255.0
    steps = [Step("Your picture", values, f"{arr.shape[1]}×{arr.shape[0]} pixels")]
    h, w = values.shape[:2]
    side = max(h, w) if channels == 1 else min(h, w)
    if channels == 1:
        background = np.median(np.stack([_border(values[..., c]) for c in range(3)], axis=-1), axis=0)
        square = np.empty((side, side, 3), dtype=np.float32)
        square[:] = background
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = values
        steps.append(Step("Made square", square, "padded with the background colour, nothing cut off"))
    else:
        top, left = (h - side) // 2, (w - side) // 2
        square = values[top : top + side, left : left + side]
        steps.append(Step("Made square", square, "the centre square, as CIFAR-10 photos are framed"))
    small = np.clip(_resize(square, width, height), 0.0, 1.0)
    steps.append(Step(f"Resized to {width}×{height}", small, "anti-aliased"))
    if channels == 3:
        return PreparedImage(x=small.astype(np.float32), steps=tuple(steps), mode="photo", note="Colour kept.")
    grey = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if float(np.median(_border(grey))) >= 0.5:
        grey = 1.0 - grey
        note = "Light background: inverted, because the dataset's items are light on black."
        steps.append(Step("Grey, inverted", grey, "light item on a black background"))
    else:
        note = "Dark background, as in the dataset: kept as it is."
        steps.append(Step("Grey", grey, "grey levels"))
    x = np.clip(grey, 0.0, 1.0).astype(np.float32)[..., None]
    return PreparedImage(x=x, steps=tuple(steps), mode="photo", note=note)


DIGIT_NAMES = tuple(str(i) for i in range(10))
DRAWN_DATASET_PREFIX = "drawings:"   # a dataset the class drew on this canvas (cnnkit/class_drawings.py)


def uses_drawing(dataset_name: str | None, image_shape: tuple[int, ...], class_names=None) -> bool:
    """Whether a model is fed drawings (MNIST-style digits) rather than pictures: MNIST itself, a collection the
    class drew (`drawings:…`, any classes: its drawings were prepared by `prepare_drawing`), or a
    dataset from a file (`file:…`) whose images are 28×28×1 in 10 classes named 0–9, such as the full
    mnist.npz (an .npz names its classes 0–9; a saved run's model with 10 outputs is named so too).
    A file of another kind with that shape is told apart by saying what it is: `--dataset
    fashion_mnist=FILE` on the command line, or the dataset picked on the Data page before uploading."""
    if tuple(image_shape) != (FRAME, FRAME, 1):
        return False
    if dataset_name == "mnist" or (dataset_name or "").startswith(DRAWN_DATASET_PREFIX):
        return True   # a class-drawn collection was drawn on the canvas and prepared like MNIST
    if not (dataset_name or "").startswith("file:"):
        return False
    return class_names is not None and tuple(str(c) for c in class_names) == DIGIT_NAMES


def prepare_for(image: ImageLike | None, dataset_name: str | None, image_shape: tuple[int, int, int],
                class_names=None) -> PreparedImage:
    """The one preparation the app and the command line use for a model trained on dataset `dataset_name`."""
    if uses_drawing(dataset_name, image_shape, class_names):
        return prepare_drawing(image, source="Your picture")
    return prepare_photo(image, image_shape)


def prepare_test_image(dataset: Dataset, index: int) -> tuple[PreparedImage, str]:
    """Test image `index` of `dataset` as a model input, and its true class name. Test images are already in
    the dataset's shape, so the only preparation is the one training used: 0–255 scaled to 0–1."""
    from cnnkit.datasets import to_float

    n = len(dataset.x_test)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise DrawingError(f"{dataset.title} has test images 0 to {n - 1}; {index!r} is not one of them. "
                           "Choose a number in that range.")
    x = to_float(dataset.x_test[int(index)])
    label = dataset.class_names[int(dataset.y_test[int(index)])]
    prepared = PreparedImage(x=x, steps=(Step("Test image", x.squeeze(), "already in the dataset's shape"),),
                             mode="test", note="Test images are used as they are: scaled from 0–255 to 0–1.")
    return prepared, label


def drawn_noun(class_names) -> str:
    """What a student draws for a model of these classes, in words: "digit" for 0–9, the class names themselves
    for a few ("circle, square or triangle"), else "drawing"."""
    names = tuple(str(c) for c in (class_names or ()))
    if not names or names == DIGIT_NAMES:
        return "digit"
    if len(names) <= 4:
        return ", ".join(names[:-1]) + " or " + names[-1]
    return "drawing"


def article(word: str) -> str:
    """ "a" or "an", as the label is read aloud: a 7, an 8, an airplane, a truck, a one-hot."""
    w = str(word).strip().lower()
    vowel_sound = (w[:1] in ("a", "e", "i", "o", "u") and not w.startswith(("uni", "use", "one"))) \
        or w.startswith(("8", "11", "18", "hour"))
    return "an" if vowel_sound else "a"


def enlarge(values: np.ndarray, size: int = 140) -> np.ndarray:
    """Nearest-neighbour enlargement to about `size` pixels, as uint8, so small images stay crisp
    (a browser would blur a 28×28 image stretched to fill a column)."""
    values = np.asarray(values, dtype=np.float32)
    factor = max(1, int(round(size / max(values.shape[:2]))))
    big = np.repeat(np.repeat(values, factor, axis=0), factor, axis=1)
    return np.clip(np.rint(big * 255.0), 0, 255).astype(np.uint8)
