"""The layer catalogue: one entry per layer type a student can put in a model.

Each `LayerType` holds, in one place, everything CNN Lab knows about a layer:
its settings (type, default, allowed range — the architecture page builds its
widgets from them), its output-shape function, its parameter-count and FLOP
functions, its Keras constructor and a few sentences that explain it.
Adding a layer type is adding one entry to `CATALOGUE`; no page changes.

Shapes here are per image, without the batch axis: (H, W, C) for feature maps
and (N,) for vectors. The formulas mirror Keras 3's own `compute_output_shape`
and weight creation; tests hold them to `keras.Sequential(...).count_params()`.
Keras is imported only inside the `build` functions.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

Shape = tuple[int, ...]

# Activation names a Conv2D or Dense layer accepts, with a line for the page.
ACTIVATIONS: dict[str, str] = {
    "relu": "ReLU: max(0, x). The usual choice for hidden layers.",
    "linear": "No activation: the layer's output is just the weighted sum.",
    "softmax": "Softmax: turns scores into probabilities that add up to 1 (last layer).",
    "sigmoid": "Sigmoid: squashes each value into (0, 1).",
    "tanh": "Tanh: squashes each value into (-1, 1).",
    "elu": "ELU: like ReLU, but smooth and slightly negative below 0.",
}


class ShapeProblem(Exception):
    """A layer cannot take the shape it receives; the message is for a student."""


@dataclass(frozen=True)
class ParamDef:
    """One setting of a layer type: what it is, its default and what values it allows."""

    name: str
    label: str
    kind: str  # "int", "float", "choice" or "bool"
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    max_exclusive: bool = False  # e.g. a dropout rate must stay below 1
    step: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is allowed and means `none_label`
    none_label: str = ""

    def check(self, value: Any) -> str | None:
        """Return a sentence saying what is wrong with `value`, or None if it is allowed."""
        if value is None:
            return None if self.optional else f"{self.label} needs a value."
        kind = type(value)
        if self.kind == "choice" and kind is str and value in self.choices:
            return None  # the common cases first: this runs for every setting on every page rerun
        if (self.kind == "int" and kind is int) or (self.kind == "float" and kind in (int, float)
                                                      and math.isfinite(value)):
            return self._check_range(value)
        if self.kind == "bool" and kind is bool:
            return None
        if self.kind == "int":
            if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                    or int(value) != value):
                return f"{self.label} must be a whole number, not {shown(value)}."
        elif self.kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                return f"{self.label} must be a number, not {shown(value)}."
        elif self.kind == "choice":
            if value not in self.choices:
                return f"{self.label} must be one of {', '.join(self.choices)}, not {value!r}."
            return None
        elif self.kind == "bool":
            if not isinstance(value, bool):
                return f"{self.label} must be true or false, not {value!r}."
            return None
        return self._check_range(value)

    def _check_range(self, value: float) -> str | None:
        if self.min is not None and value < self.min:
            return f"{self.label} must be at least {_fmt(self.min)}; it is {_fmt(value)}."
        if self.max is not None:
            if self.max_exclusive and value >= self.max:
                return f"{self.label} must be below {_fmt(self.max)}; it is {_fmt(value)}."
            if not self.max_exclusive and value > self.max:
                return f"{self.label} must be at most {_fmt(self.max)}; it is {_fmt(value)}."
        return None

    def coerce(self, value: Any) -> Any:
        """JSON gives 32.0 or 32 alike: store whole numbers as int, rates as float."""
        kind = type(value)
        if value is None or kind is bool or kind is str or (kind is int and self.kind == "int"):
            return value
        if (self.kind == "int" and isinstance(value, numbers.Real) and math.isfinite(value)
                and int(value) == value):
            return int(value)  # NaN and infinity stay as they are: `check` says what is wrong with them
        if self.kind == "float" and isinstance(value, numbers.Real):
            return float(value)
        return value


def shown(value: Any) -> str:
    """A setting's value as a model file writes it: NaN and Infinity by their JSON names, the rest as repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return repr(value)


def non_finite_setting(type_: str, params: dict[str, Any]) -> str | None:
    """What is wrong with the first setting of a layer's `params` that holds NaN or Infinity (Python's JSON
    reads both literals), looked for inside lists and objects too, e.g. "units must be a whole number, not
    NaN"; None when there is none. Model files are refused with it as they are read."""
    entry = CATALOGUE.get(type_)
    for key, value in params.items():
        pending, seen = [value], 0
        while pending and seen < 10_000:  # a model file's size and depth are limited before this runs
            v = pending.pop()
            seen += 1
            if isinstance(v, float) and not math.isfinite(v):
                pdef = next((p for p in entry.params if p.name == key), None) if entry else None
                kind = pdef.kind if pdef else ""
                what = {"int": "a whole number", "bool": "true or false",
                        "choice": "one of " + ", ".join(pdef.choices) if pdef else ""}.get(kind, "a number")
                return f"{key} must be {what}, not {shown(v)}"
            pending.extend(v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else ())
    return None


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class LayerType:
    """A catalogue entry: everything about one Keras layer type."""

    key: str  # catalogue key and Keras class name, e.g. "Conv2D"
    title: str  # a short title for menus
    keras_name: str  # Keras's automatic name stem, e.g. "conv2d" (then conv2d_1, conv2d_2, ...)
    summary: str  # one line for menus
    explain: str  # two or three sentences for a student
    needs: str  # input the layer accepts: "image" (H, W, C), "vector" (N,) or "any"
    output_shape: Callable[[Shape, dict], Shape]
    count_params: Callable[[Shape, dict], tuple[int, int]]  # (trainable, non-trainable)
    flops: Callable[[Shape, Shape, dict], int]  # forward FLOPs per image
    build: Callable[[dict, str], Any]  # (params, name) -> keras layer
    params: tuple[ParamDef, ...] = field(default_factory=tuple)
    # (input shape, params) -> how the parameter count comes about, in words with the numbers
    formula: Callable[[Shape, dict], str] | None = None

    def explain_count(self, shape: Shape, params: dict) -> str:
        if self.formula is not None:
            return self.formula(shape, params)
        return "No weights to learn: 0 parameters."

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @cached_property
    def param_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)


    def resolve(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The layer's full settings: defaults, overridden by the known keys of `params`."""
        if not params:
            return self.defaults()
        return {p.name: p.coerce(params[p.name]) if p.name in params else p.default for p in self.params}


# --- shape arithmetic (mirrors keras.src.ops.operation_utils.compute_conv_output_shape) ---
def _window_out(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return (size + stride - 1) // stride
    return (size - window) // stride + 1


def _need_image(shape: Shape, what: str) -> None:
    if len(shape) != 3:
        raise ShapeProblem(
            f"{what} works on images (height × width × channels) but receives a flat vector of "
            f"{shape[0]:,} values. Move it before Flatten or GlobalAveragePooling2D."
        )


def _windowed(shape: Shape, window: int, stride: int, padding: str, channels: int, what: str) -> Shape:
    _need_image(shape, what)
    h, w, _ = shape
    oh, ow = _window_out(h, window, stride, padding), _window_out(w, window, stride, padding)
    if oh < 1 or ow < 1:
        raise ShapeProblem(
            f"The {window}×{window} window of this {what} is larger than its {h}×{w} input, so the "
            f"output would shrink below 1×1. Use a smaller window, padding 'same', or fewer "
            f"pooling/valid-convolution layers before it."
        )
    return (oh, ow, channels)


def _same(shape: Shape, params: dict) -> Shape:
    return shape


def _no_params(shape: Shape, params: dict) -> tuple[int, int]:
    return (0, 0)


def _no_flops(in_shape: Shape, out_shape: Shape, params: dict) -> int:
    return 0


# --- Conv2D -------------------------------------------------------------------
def _conv_shape(shape: Shape, p: dict) -> Shape:
    return _windowed(shape, p["kernel_size"], p["strides"], p["padding"], p["filters"], "Conv2D")


def _conv_params(shape: Shape, p: dict) -> tuple[int, int]:
    k, cin = p["kernel_size"], shape[-1]
    return (k * k * cin * p["filters"] + (p["filters"] if p["use_bias"] else 0), 0)


def _conv_flops(in_shape: Shape, out_shape: Shape, p: dict) -> int:
    # 2 FLOPs (multiply + add) per multiply-accumulate; bias adds not counted.
    oh, ow, f = out_shape
    return 2 * oh * ow * f * p["kernel_size"] ** 2 * in_shape[-1]


def _conv_formula(shape: Shape, p: dict) -> str:
    k, cin, f = p["kernel_size"], shape[-1], p["filters"]
    bias = f" + {f:,} biases" if p["use_bias"] else " (no biases)"
    return (f"{k}×{k} kernel × {cin:,} input channel{'s' if cin != 1 else ''} × {f:,} filters{bias} "
            f"= {_conv_params(shape, p)[0]:,} parameters.")


def _conv_build(p: dict, name: str):
    from keras import layers

    return layers.Conv2D(
        p["filters"], p["kernel_size"], strides=p["strides"], padding=p["padding"],
        activation=p["activation"], use_bias=p["use_bias"], name=name,
    )


# --- pooling ------------------------------------------------------------------
def _pool_stride(p: dict) -> int:
    return p["pool_size"] if p["strides"] is None else p["strides"]


def _pool_shape(what: str) -> Callable[[Shape, dict], Shape]:
    def shape_fn(shape: Shape, p: dict) -> Shape:
        _need_image(shape, what)
        return _windowed(shape, p["pool_size"], _pool_stride(p), p["padding"], shape[-1], what)

    return shape_fn


def _pool_build(cls_name: str) -> Callable[[dict, str], Any]:
    def build(p: dict, name: str):
        from keras import layers

        cls = getattr(layers, cls_name)
        return cls(pool_size=p["pool_size"], strides=p["strides"], padding=p["padding"], name=name)

    return build


# --- Dense --------------------------------------------------------------------
def _dense_shape(shape: Shape, p: dict) -> Shape:
    # Keras applies Dense to the last axis of any tensor; validation flags a 3-D input.
    return shape[:-1] + (p["units"],)


def _dense_params(shape: Shape, p: dict) -> tuple[int, int]:
    return (shape[-1] * p["units"] + p["units"], 0)


def _dense_flops(in_shape: Shape, out_shape: Shape, p: dict) -> int:
    return 2 * math.prod(in_shape) * p["units"]


def _dense_formula(shape: Shape, p: dict) -> str:
    n, u = shape[-1], p["units"]
    return f"{n:,} inputs × {u:,} units + {u:,} biases = {n * u + u:,} parameters."


def _dense_build(p: dict, name: str):
    from keras import layers

    return layers.Dense(p["units"], activation=p["activation"], name=name)


# --- the rest -----------------------------------------------------------------
def _flatten_shape(shape: Shape, p: dict) -> Shape:
    return (math.prod(shape),)


def _gap_shape(shape: Shape, p: dict) -> Shape:
    _need_image(shape, "GlobalAveragePooling2D")
    return (shape[-1],)


def _spatial_dropout_shape(shape: Shape, p: dict) -> Shape:
    _need_image(shape, "SpatialDropout2D")
    return shape


def _bn_params(shape: Shape, p: dict) -> tuple[int, int]:
    # gamma and beta are learned; the moving mean and variance are not.
    c = shape[-1]
    return (2 * c, 2 * c)


def _bn_formula(shape: Shape, p: dict) -> str:
    c = shape[-1]
    return (f"4 × {c:,} channels = {4 * c:,} parameters: gamma and beta ({2 * c:,}) are trained; the moving "
            f"mean and variance ({2 * c:,}) are not.")


def _simple_build(cls_name: str, **fixed) -> Callable[[dict, str], Any]:
    def build(p: dict, name: str):
        from keras import layers

        return getattr(layers, cls_name)(**p, **fixed, name=name)

    return build


_ACT = ParamDef(
    "activation", "Activation", "choice", "relu",
    "Applied to every output value. ReLU for hidden layers, softmax on the last layer.",
    choices=tuple(ACTIVATIONS),
)
_PADDING = ParamDef(
    "padding", "Padding", "choice", "valid",
    "'valid' uses only positions where the window fits, so the output shrinks; "
    "'same' pads the border with zeros so that, with stride 1, the output keeps its size.",
    choices=("valid", "same"),
)
_RATE = ParamDef(
    "rate", "Rate", "float", 0.25,
    "Fraction of values set to zero at each training step (never at prediction time).",
    min=0.0, max=1.0, max_exclusive=True, step=0.05,
)

CATALOGUE: dict[str, LayerType] = {
    t.key: t
    for t in [
        LayerType(
            key="Conv2D", title="Conv2D (convolution)", keras_name="conv2d",
            summary="Slides small learned filters over the image to detect local patterns.",
            explain=(
                "A convolution slides each of its filters (small windows of weights, e.g. 3×3) over the "
                "image and writes one number per position: how strongly that patch matches the filter. "
                "Each filter produces one feature map, so 32 filters give 32 channels. Its parameters are "
                "kernel height × width × input channels × filters, plus one bias per filter when it uses "
                "biases — far fewer than a Dense layer, because the same filter is reused at every position."
            ),
            needs="image", output_shape=_conv_shape, count_params=_conv_params, flops=_conv_flops,
            build=_conv_build, formula=_conv_formula,
            params=(
                ParamDef("filters", "Filters", "int", 32,
                         "How many different patterns this layer learns: the number of output channels.",
                         min=1, max=512, step=1),
                ParamDef("kernel_size", "Kernel size", "int", 3,
                         "Height and width of each filter window (3 means 3×3).", min=1, max=11, step=1),
                ParamDef("strides", "Strides", "int", 1,
                         "How many pixels the window moves each step; 2 halves the output size.",
                         min=1, max=5, step=1),
                _PADDING,
                _ACT,
                ParamDef("use_bias", "Use bias", "bool", True,
                         "Add one learned bias per filter. Switch it off when BatchNormalization follows: "
                         "its beta does the same job."),
            ),
        ),
        LayerType(
            key="MaxPooling2D", title="MaxPooling2D", keras_name="max_pooling2d",
            summary="Keeps the largest value of each window: shrinks the feature maps.",
            explain=(
                "Max pooling looks at each small window (2×2 by default) of every feature map and keeps only "
                "the largest value, so a 26×26 map becomes 13×13. It has no weights to learn; it makes the "
                "model smaller and faster and less sensitive to exactly where a pattern appears."
            ),
            needs="image", output_shape=_pool_shape("MaxPooling2D"), count_params=_no_params,
            flops=_no_flops, build=_pool_build("MaxPooling2D"),
            params=(
                ParamDef("pool_size", "Pool size", "int", 2, "Height and width of the pooling window.",
                         min=1, max=8, step=1),
                ParamDef("strides", "Strides", "int", None,
                         "How far the window moves each step. Empty means the same as the pool size, "
                         "so windows do not overlap.", min=1, max=8, step=1, optional=True,
                         none_label="= pool size"),
                _PADDING,
            ),
        ),
        LayerType(
            key="AveragePooling2D", title="AveragePooling2D", keras_name="average_pooling2d",
            summary="Averages each window: shrinks the feature maps more smoothly than max pooling.",
            explain=(
                "Average pooling replaces each small window of every feature map by the mean of its values. "
                "Like max pooling it has no weights and shrinks the maps (2×2 windows halve height and width), "
                "but every value of the window counts equally in the result, where max pooling keeps only "
                "the largest."
            ),
            needs="image", output_shape=_pool_shape("AveragePooling2D"), count_params=_no_params,
            flops=_no_flops, build=_pool_build("AveragePooling2D"),
            params=(
                ParamDef("pool_size", "Pool size", "int", 2, "Height and width of the pooling window.",
                         min=1, max=8, step=1),
                ParamDef("strides", "Strides", "int", None,
                         "How far the window moves each step. Empty means the same as the pool size.",
                         min=1, max=8, step=1, optional=True, none_label="= pool size"),
                _PADDING,
            ),
        ),
        LayerType(
            key="Dropout", title="Dropout", keras_name="dropout",
            summary="Switches off a random fraction of values while training, against over-fitting.",
            explain=(
                "During training, dropout sets a random fraction of its inputs (the rate, e.g. 0.25) to zero "
                "at every step and scales the rest up, so the network cannot rely on any single neuron. "
                "At prediction time it does nothing. It has no weights; it narrows the gap between training "
                "and validation accuracy."
            ),
            needs="any", output_shape=_same, count_params=_no_params, flops=_no_flops,
            build=_simple_build("Dropout"), params=(_RATE,),
        ),
        LayerType(
            key="SpatialDropout2D", title="SpatialDropout2D", keras_name="spatial_dropout2d",
            summary="Drops whole feature maps at random while training.",
            explain=(
                "Spatial dropout switches off entire channels (whole feature maps) instead of single pixels. "
                "Neighbouring pixels of a feature map are strongly alike, so dropping single pixels hardly "
                "regularises a convolution; dropping whole maps does. It has no weights."
            ),
            needs="image", output_shape=_spatial_dropout_shape, count_params=_no_params, flops=_no_flops,
            build=_simple_build("SpatialDropout2D"),
            params=(ParamDef(_RATE.name, _RATE.label, "float", 0.1, "Fraction of feature maps switched off "
                             "at each training step.", min=0.0, max=1.0, max_exclusive=True, step=0.05),),
        ),
        LayerType(
            key="BatchNormalization", title="BatchNormalization", keras_name="batch_normalization",
            summary="Re-centres and re-scales each channel: faster, steadier training.",
            explain=(
                "Batch normalisation rescales each channel to mean 0 and variance 1 over the batch, then "
                "applies a learned scale (gamma) and shift (beta). It lets you train faster with larger "
                "learning rates. Per channel it has 4 numbers: gamma and beta are trained, the moving mean "
                "and variance (used at prediction time) are not — they count as non-trainable parameters."
            ),
            needs="any", output_shape=_same, count_params=_bn_params, flops=_no_flops,
            build=_simple_build("BatchNormalization"), formula=_bn_formula,
            params=(
                ParamDef("momentum", "Momentum", "float", 0.99,
                         "How slowly the moving mean and variance follow each batch's statistics.",
                         min=0.0, max=1.0, max_exclusive=True, step=0.01),
            ),
        ),
        LayerType(
            key="Flatten", title="Flatten", keras_name="flatten",
            summary="Unrolls the feature maps into one long vector for the Dense layers.",
            explain=(
                "Flatten lays all the values of the feature maps out in one long vector — 13×13×32 becomes "
                "5,408 values — so that Dense layers can use them. It has no weights, but it decides how big "
                "the next Dense layer is: every one of those values gets a weight to every unit."
            ),
            needs="any", output_shape=_flatten_shape, count_params=_no_params, flops=_no_flops,
            build=_simple_build("Flatten"),
        ),
        LayerType(
            key="GlobalAveragePooling2D", title="GlobalAveragePooling2D", keras_name="global_average_pooling2d",
            summary="Averages each whole feature map to one number: a small alternative to Flatten.",
            explain=(
                "Global average pooling replaces each feature map by its average, so 7×7×64 becomes a vector "
                "of 64 values. Used instead of Flatten before the classifier, it keeps the Dense layer tiny "
                "and makes the model less prone to over-fitting."
            ),
            needs="image", output_shape=_gap_shape, count_params=_no_params, flops=_no_flops,
            build=_simple_build("GlobalAveragePooling2D"),
        ),
        LayerType(
            key="Dense", title="Dense (fully connected)", keras_name="dense",
            summary="Every input connected to every unit: combines features; the last one classifies.",
            explain=(
                "A dense layer connects every input value to every one of its units: each unit computes a "
                "weighted sum of all inputs plus a bias. Its parameters are inputs × units + units, which is "
                "why a Dense layer after a big Flatten holds most of a CNN's parameters. The last Dense layer "
                "has one unit per class and softmax, so its outputs are class probabilities."
            ),
            needs="vector", output_shape=_dense_shape, count_params=_dense_params, flops=_dense_flops,
            build=_dense_build, formula=_dense_formula,
            params=(
                ParamDef("units", "Units", "int", 128, "Number of neurons (outputs) in this layer.",
                         min=1, max=4096, step=1),
                _ACT,
            ),
        ),
        LayerType(
            key="ReLU", title="ReLU (activation layer)", keras_name="re_lu",
            summary="max(0, x) as a separate layer.",
            explain=(
                "ReLU keeps positive values and replaces negative ones by 0. As a separate layer it does the "
                "same as activation='relu' on the layer before; it is handy after BatchNormalization "
                "(Conv2D without activation → BatchNormalization → ReLU). No weights."
            ),
            needs="any", output_shape=_same, count_params=_no_params, flops=_no_flops,
            build=_simple_build("ReLU"),
        ),
        LayerType(
            key="LeakyReLU", title="LeakyReLU (activation layer)", keras_name="leaky_re_lu",
            summary="Like ReLU, but lets a small slope through for negative values.",
            explain=(
                "LeakyReLU keeps positive values and multiplies negative ones by a small slope (e.g. 0.1) "
                "instead of zeroing them. A plain ReLU unit whose input is always negative stops learning "
                "for good (a 'dying ReLU'); the small slope keeps a gradient flowing. No weights."
            ),
            needs="any", output_shape=_same, count_params=_no_params, flops=_no_flops,
            build=_simple_build("LeakyReLU"),
            params=(
                ParamDef("negative_slope", "Negative slope", "float", 0.1,
                         "Multiplier for negative inputs (0 would make it a plain ReLU).",
                         min=0.0, max=1.0, step=0.01),
            ),
        ),
    ]
}

# The order the page's "add layer" menu offers the types in.
LAYER_TYPES: tuple[str, ...] = tuple(CATALOGUE)


def get(key: str) -> LayerType:
    """The catalogue entry for `key`; KeyError for an unknown type (callers turn it into a SpecError)."""
    return CATALOGUE[key]
