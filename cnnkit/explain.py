"""Why the model answered, and how a convolution computes: for the student's own model and image.

- `conv1d`: the lessons' warm-up, a = [2, 5, 8, 4, 7, 9] slid along b = [1, 2, 3], every dot product.
- `conv_arithmetic`: one number of a Conv2D feature map worked out by hand — the k×k input window,
  that filter's weights, their element-wise products, the sum, the bias, then whatever the model
  applies next (its activation, or a BatchNormalization and an activation layer, as the fast preset
  does) — ending at the very number the feature map holds.
- `filter_images`: the first layer's learned filters as small images.
- `Saliency`: Grad-CAM on the last convolution layer (gradients × input for a model without one),
  for the predicted class or any class the student asks about ("why not 7?"), traced once per model.
- `overlay`: a heat map over the 28×28 input, as an RGB image for a page or a PNG.

Numpy for the arithmetic (it is what the page shows); TensorFlow only for the gradients.
No Streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.errors import UserError

# The lessons' 1-D example.
LESSON_A = (2, 5, 8, 4, 7, 9)
LESSON_B = (1, 2, 3)

# Layers between a Conv2D and the feature map the page shows (see predict.Predictor._conv_outputs).
_ACTIVATION_LAYERS = ("ReLU", "LeakyReLU", "ELU", "Activation")


# --- the 1-D warm-up --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conv1DStep:
    position: int  # where b's first weight sits on a
    window: tuple[float, ...]
    products: tuple[float, ...]
    total: float

    @property
    def formula(self) -> str:
        terms = " + ".join(f"{_num(w)}×{_num(b)}" for w, b in zip(self.window, self._kernel, strict=True))
        return f"{terms} = {_num(self.total)}"

    _kernel: tuple[float, ...] = ()


def conv1d(a: Sequence[float] = LESSON_A, b: Sequence[float] = LESSON_B) -> list[Conv1DStep]:
    """Slide b along a ("valid": b stays inside a) and take the dot product at each place — what Keras's
    Conv1D/Conv2D compute (they do not flip the filter, unlike the convolution of a maths course)."""
    a = [float(v) for v in a]
    b = [float(v) for v in b]
    if not b or len(b) > len(a):
        raise UserError("The filter b must have at least one number and be no longer than a.")
    steps = []
    for i in range(len(a) - len(b) + 1):
        window = tuple(a[i : i + len(b)])
        products = tuple(w * k for w, k in zip(window, b, strict=True))
        steps.append(Conv1DStep(i, window, products, float(sum(products)), tuple(b)))
    return steps


def _num(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.3g}"


# --- one number of a feature map, by hand -------------------------------------------------------
@dataclass(frozen=True)
class ArithmeticStep:
    title: str  # "bias", "BatchNormalization", "ReLU"
    formula: str  # the numbers put in, as a sentence-sized formula
    value: float  # the result


@dataclass(frozen=True)
class ConvArithmetic:
    """How one feature-map number at (row, col, channel) of a Conv2D layer comes about."""

    layer: str
    row: int
    col: int
    channel: int
    window: np.ndarray  # (kh, kw, cin): the input values the filter lies on (0 where it is padding)
    padding_mask: np.ndarray  # (kh, kw) True where the window hangs over the edge (zero padding)
    origin: tuple[int, int]  # input row, col of the window's top-left cell (may be negative with "same")
    kernel: np.ndarray  # (kh, kw, cin): that filter's learned weights
    products: np.ndarray  # window × kernel
    total: float  # the sum of the products
    bias: float  # 0.0 for a layer without bias (use_bias=False): then no step adds it
    steps: tuple[ArithmeticStep, ...]  # the bias added (if the layer has one), then each later layer
    has_bias: bool = True
    strides: tuple[int, int] = (1, 1)
    padding_before: tuple[int, int] = (0, 0)  # zero rows above and columns left that padding "same" adds

    @property
    def value(self) -> float:
        """The feature map's number: the last step's result (the sum itself when nothing follows it)."""
        return self.steps[-1].value if self.steps else self.total

    @property
    def pre_activation(self) -> float:
        return self.total + self.bias

    def where(self) -> str:
        """Which input window the output cell reads, and why it starts there (stride, padding)."""
        kh, kw = self.kernel.shape[:2]
        (sh, sw), (top, left) = self.strides, self.padding_before
        (r0, c0), cell = self.origin, f"({self.row}, {self.col})"
        lead = f"Output cell {cell} reads the {kh}×{kw} window starting at input ({r0}, {c0})"
        if (sh, sw) == (1, 1) and (top, left) == (0, 0):
            return lead + "."
        reasons = []
        if (sh, sw) != (1, 1):
            reasons.append(f"the stride is {sh}" if sh == sw else f"the stride is {sh} down and {sw} across")
        if (top, left) != (0, 0):
            reasons.append(f'padding "same" adds {top} zero row{"s" if top != 1 else ""} above and {left} zero '
                           f'column{"s" if left != 1 else ""} on the left')

        def arithmetic(i: int, s: int, p: int) -> str:
            return (f"{i} × {s}" if s != 1 else f"{i}") + (f" − {p}" if p else "")

        return (f"{lead} because {' and '.join(reasons)}: "
                f"{arithmetic(self.row, sh, top)} = {r0}, {arithmetic(self.col, sw, left)} = {c0}.")

    def sum_line(self) -> str:
        """The worked-out sum's line (Markdown): the products summed, and a word when no bias follows."""
        kh, kw, cin = self.kernel.shape
        return (f"Sum of the {kh * kw * cin} products: **{self.total:.4f}**"
                + ("" if self.has_bias else " (no bias: this layer has none)"))

    def sentence(self) -> str:
        kh, kw, cin = self.kernel.shape
        size = f"{kh}×{kw}" + (f"×{cin}" if cin > 1 else "")
        over = (" (the grey cells hang over the edge: padding \"same\" counts them as 0)"
                if self.padding_mask.any() else "")
        bias = (f"; plus the bias {self.bias:.4f} gives {self.pre_activation:.4f}" if self.has_bias
                else " (this layer has no bias)")
        later = self.steps[1:] if self.has_bias else self.steps
        return (f"Filter {self.channel + 1} of {self.layer} lies on the {size} window at row {self.origin[0]}, "
                f"column {self.origin[1]} of its input{over}. {self.where()} "
                f"{kh * kw * cin} products, summed to {self.total:.4f}{bias}"
                + "".join(f"; {s.title}: {s.formula}" for s in later)
                + f". That is the feature map's number at ({self.row}, {self.col}): {self.value:.4f}.")


def conv_layers(model) -> list[Any]:
    """The model's Conv2D layers, first first."""
    return [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]


def _conv_layer(model, layer: str | int | None):
    convs = conv_layers(model)
    if not convs:
        raise UserError("This model has no Conv2D layer, so there is no convolution to show.")
    if layer is None:
        return convs[0]
    if isinstance(layer, int):
        return convs[layer]
    for c in convs:
        if c.name == layer:
            return c
    raise UserError(f"This model has no Conv2D layer named {layer}: it has {', '.join(c.name for c in convs)}.")


def _same_padding(size: int, k: int, stride: int, dilation: int) -> int:
    """Rows (or columns) TensorFlow pads before the input for padding "same" (the rest go after)."""
    out = math.ceil(size / stride)
    effective = (k - 1) * dilation + 1
    return max((out - 1) * stride + effective - size, 0) // 2


def _plus(v: float) -> str:
    """" + 0.1450" or " − 0.0629": adding a number, with one sign (never "+ -0.0629")."""
    return f" − {-v:.4f}" if v < 0 else f" + {v:.4f}"


def _minus(v: float) -> str:
    """" − 0.1450" or " + 0.0629": subtracting a number, with one sign (never "− -0.0629")."""
    return f" + {-v:.4f}" if v < 0 else f" − {v:.4f}"


def _factor(v: float) -> str:
    """A number as a factor: in brackets when negative, so "0.1 × (-0.5000)" never reads "0.1×-0.5000"."""
    return f"({v:.4f})" if v < 0 else f"{v:.4f}"


def _activation_step(name: str, z: float, cfg: dict) -> ArithmeticStep:
    if name == "linear":
        return ArithmeticStep("no activation", f"{z:.4f}", z)
    if name == "relu":
        slope = float(cfg.get("negative_slope", 0.0) or 0.0)
        threshold = float(cfg.get("threshold", 0.0) or 0.0)
        cap = cfg.get("max_value")
        v = z if z >= threshold else slope * (z - threshold)
        if cap is not None:
            v = min(v, float(cap))
        if slope == 0 and threshold == 0 and cap is None:
            return ArithmeticStep("ReLU", f"max(0, {z:.4f}) = {v + 0.0:.4f}", v + 0.0)
        return ArithmeticStep("ReLU", f"ReLU({z:.4f}) = {v:.4f}", v)
    if name == "leaky_relu":
        slope = float(cfg.get("negative_slope", cfg.get("alpha", 0.2)))
        v = z if z >= 0 else slope * z
        return ArithmeticStep("LeakyReLU", f"{z:.4f} if positive, else {slope:g} × {_factor(z)} = {v:.4f}", v)
    if name == "elu":
        alpha = float(cfg.get("alpha", 1.0))
        v = z if z > 0 else alpha * (math.exp(z) - 1.0)
        return ArithmeticStep("ELU", f"ELU({z:.4f}) = {v:.4f}", v)
    if name == "sigmoid":
        v = 1.0 / (1.0 + math.exp(-z))
        return ArithmeticStep("sigmoid", f"1 / (1 + e^{_factor(-z)}) = {v:.4f}", v)
    if name == "tanh":
        v = math.tanh(z)
        return ArithmeticStep("tanh", f"tanh({z:.4f}) = {v:.4f}", v)
    if name in ("swish", "silu"):
        v = z / (1.0 + math.exp(-z))
        return ArithmeticStep(name, f"{z:.4f} × sigmoid({z:.4f}) = {v:.4f}", v)
    if name == "gelu":
        v = 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0)))
        return ArithmeticStep("GELU", f"GELU({z:.4f}) = {v:.4f}", v)
    raise UserError(f"The activation '{name}' is not one this page can work out by hand.")


def _layer_activation(layer) -> tuple[str, dict]:
    """(activation name, config) of a Conv2D or an activation layer."""
    kind = type(layer).__name__
    cfg = layer.get_config()
    if kind == "ReLU":
        return "relu", cfg
    if kind == "LeakyReLU":
        return "leaky_relu", cfg
    if kind == "ELU":
        return "elu", cfg
    act = cfg.get("activation", "linear")
    if isinstance(act, dict):  # a serialised activation function
        act = act.get("config", {}).get("name", act.get("class_name", "linear"))
    return str(act), {}


def following_layers(model, conv) -> list[Any]:
    """The layers after `conv` that its feature map includes: for a Conv2D without its own activation,
    the BatchNormalization layers and the activation layer right after it (Conv–BN–ReLU, as the fast
    preset has). None otherwise: the feature map is the conv's own output."""
    if _layer_activation(conv)[0] != "linear":
        return []
    layers = list(model.layers)
    j = layers.index(conv) + 1
    after = []
    while j < len(layers) and type(layers[j]).__name__ == "BatchNormalization":
        after.append(layers[j])
        j += 1
    if j < len(layers) and type(layers[j]).__name__ in _ACTIVATION_LAYERS:
        return after + [layers[j]]
    return []


def conv_output(model, conv):
    """The symbolic feature map of `conv`: its output, or that of the activation layer it feeds."""
    after = following_layers(model, conv)
    return (after[-1] if after else conv).output


def layer_input(model, conv, x: np.ndarray) -> np.ndarray:
    """What `conv` receives for the image x (H, W, C): x itself for a first layer, else the layers before it."""
    x = np.asarray(x, dtype=np.float32)
    if list(model.layers).index(conv) == 0:
        return x
    import keras

    sub = keras.Model(inputs=model.inputs[0], outputs=conv.input)
    return np.asarray(sub(x[None], training=False))[0]


def conv_arithmetic(model, x: np.ndarray, row: int, col: int, channel: int, layer: str | int | None = None,
                    inputs: np.ndarray | None = None) -> ConvArithmetic:
    """One number of a Conv2D layer's feature map for the image x (H, W, C), worked out by hand.

    `layer`: the Conv2D's name or index among the Conv2D layers (default: the first). `inputs`: the
    layer's input when the caller already has it (else it is computed). The result's `value` equals
    the model's own feature map (after the layer's activation, or the BatchNormalization and
    activation layer that follow it) at (row, col, channel).
    """
    conv = _conv_layer(model, layer)
    cfg = conv.get_config()
    if cfg.get("data_format", "channels_last") != "channels_last" or int(cfg.get("groups", 1)) != 1:
        raise UserError(f"{conv.name} uses a layout this page cannot work out by hand (channels first or groups).")
    a = layer_input(model, conv, x) if inputs is None else np.asarray(inputs, dtype=np.float32)
    kernel_all = np.asarray(conv.kernel, dtype=np.float32)  # (kh, kw, cin, cout)
    kh, kw, cin, cout = kernel_all.shape
    sh, sw = (int(s) for s in cfg["strides"])
    dh, dw = (int(d) for d in cfg.get("dilation_rate", (1, 1)))
    h, w = a.shape[:2]
    if cfg["padding"] == "same":
        top, left = _same_padding(h, kh, sh, dh), _same_padding(w, kw, sw, dw)
        out_h, out_w = math.ceil(h / sh), math.ceil(w / sw)
    else:
        top = left = 0
        out_h, out_w = (h - (kh - 1) * dh - 1) // sh + 1, (w - (kw - 1) * dw - 1) // sw + 1
    if not (0 <= row < out_h and 0 <= col < out_w and 0 <= channel < cout):
        raise UserError(f"{conv.name}'s feature map is {out_h}×{out_w} with {cout} channels: "
                        f"there is no ({row}, {col}) in channel {channel + 1}.")
    r0, c0 = row * sh - top, col * sw - left
    rows = r0 + dh * np.arange(kh)
    cols = c0 + dw * np.arange(kw)
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    window = np.zeros((kh, kw, cin), dtype=np.float32)
    rr, cc = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    window[inside] = a[np.ix_(rr, cc)][inside]
    kernel = kernel_all[..., channel]
    products = window * kernel
    # Summed in float64 so the shown total is the exact sum of the shown products.
    total = float(products.astype(np.float64).sum())
    # A layer without bias (use_bias=False: BatchNormalization's beta does that job) shows no bias step at all.
    has_bias = bool(conv.use_bias)
    bias = float(np.asarray(conv.bias)[channel]) if has_bias else 0.0
    z = total + bias
    steps = [ArithmeticStep("bias", f"{total:.4f}{_plus(bias)} = {z:.4f}", z)] if has_bias else []
    name, act_cfg = _layer_activation(conv)
    if name != "linear":
        steps.append(_activation_step(name, z, act_cfg))
    for later in following_layers(model, conv):
        z = steps[-1].value if steps else total
        if type(later).__name__ == "BatchNormalization":
            bn = later.get_config()
            mean = float(np.asarray(later.moving_mean)[channel])
            var = float(np.asarray(later.moving_variance)[channel])
            gamma = float(np.asarray(later.gamma)[channel]) if bn.get("scale", True) else 1.0
            beta = float(np.asarray(later.beta)[channel]) if bn.get("center", True) else 0.0
            eps = float(bn.get("epsilon", 1e-3))
            v = gamma * (z - mean) / math.sqrt(var + eps) + beta
            steps.append(ArithmeticStep(
                "BatchNormalization",
                f"{gamma:.4f} × ({z:.4f}{_minus(mean)}) / √({var:.4f} + {eps:g}){_plus(beta)} = {v:.4f}", v))
        else:
            act, act_cfg = _layer_activation(later)
            steps.append(_activation_step(act, z, act_cfg))
    return ConvArithmetic(layer=conv.name, row=row, col=col, channel=channel, window=window,
                          padding_mask=~inside, origin=(int(r0), int(c0)), kernel=kernel, products=products,
                          total=total, bias=bias, steps=tuple(steps), has_bias=has_bias, strides=(sh, sw),
                          padding_before=(int(top), int(left)))


def deeper_layer_sentence(model, layer: str | int) -> str:
    """One sentence on how a deeper Conv2D's number is made: a sum over every input channel."""
    conv = _conv_layer(model, layer)
    kh, kw, cin, cout = np.asarray(conv.kernel).shape
    return (f"{conv.name} works the same way, but its input has {cin} channels (the feature maps of the layer "
            f"before), so each of its {cout} filters is {kh}×{kw}×{cin}: one number of its feature map is the sum "
            f"of {kh * kw * cin:,} products — a {kh}×{kw} window in every one of the {cin} input channels — "
            f"{_then(model, conv)}.")


def _then(model, conv) -> str:
    """What follows the sum of products in `conv`'s feature map, in words: its bias (if it has one), then
    the BatchNormalization and activation layers after it, or its own activation."""
    parts = ["plus one bias"] if conv.use_bias else ["no bias (this layer has none)"]
    after = following_layers(model, conv)
    if after:
        parts += [f"then {type(layer).__name__}" for layer in after]
    elif _layer_activation(conv)[0] != "linear":
        parts.append("then the activation")
    return ", ".join(parts)


def filter_images(model, layer: str | int | None = None) -> list[np.ndarray]:
    """The learned filters of a Conv2D (default: the first) as images in [0, 1]: (kh, kw) for one input
    channel, (kh, kw, 3) for colour. Each filter is scaled by its own largest |weight| with 0 at mid-grey:
    bright = positive weight (it likes ink there), dark = negative."""
    conv = _conv_layer(model, layer)
    kernel = np.asarray(conv.kernel, dtype=np.float32)
    out = []
    for c in range(kernel.shape[-1]):
        k = kernel[..., c]
        span = float(np.abs(k).max()) or 1.0
        img = (k / span + 1.0) / 2.0
        out.append(img[..., 0] if img.shape[-1] == 1 else (img if img.shape[-1] == 3 else img.mean(axis=-1)))
    return out


# --- why this answer: saliency ------------------------------------------------------------------
@dataclass(frozen=True)
class SaliencyMap:
    """Where in the image the evidence for one class lies."""

    heat: np.ndarray  # (H, W) in [0, 1], the input's size
    class_index: int
    method: str  # "Grad-CAM on conv2d_2" or "gradients × input"
    strength: float  # the largest raw value before scaling (0: nothing in the image speaks for the class)
    # This class's brightest spot as a share of the answer's: every class's map is scaled to the answer's
    # brightest spot (and clipped at 1), so a class with little evidence stays dark next to the answer.
    relative: float = 1.0

    def share(self, mask: np.ndarray) -> float:
        """The fraction of the map's mass inside a boolean (H, W) mask."""
        total = float(self.heat.sum())
        return float(self.heat[mask].sum()) / total if total > 0 else 0.0


class Saliency:
    """Saliency maps for one Keras model, traced once: `saliency(x, class_index)`.

    Grad-CAM (Selvaraju et al., 2017) on the last Conv2D layer's feature maps (after its activation,
    as the page shows them), in its element-wise form (HiResCAM, Draelos & Carin 2020): at each
    position, the class score's gradient times the activation, summed over channels; the positive
    part is scaled up to the image's size. Behind global pooling this is exactly Grad-CAM (the
    gradients are the same everywhere); behind Flatten + Dense, as the lessons' models have, Grad-CAM's
    averaging of the gradients over the map would also light up places the answer does not depend
    on, and this form does not. A model without Conv2D gets gradients × input (the same rule on the
    image itself).
    """

    def __init__(self, model) -> None:
        import tensorflow as tf

        if type(model).__name__ != "Sequential":
            raise UserError("Saliency maps are drawn for Sequential models (every model built in this app is one).")
        self.model = model
        self.input_shape = tuple(int(s) for s in model.input_shape[1:])
        convs = conv_layers(model)
        layers = list(model.layers)
        if convs:
            last = convs[-1]
            after = following_layers(model, last)
            cut = layers.index(after[-1] if after else last)  # the feature map is this layer's output
            self.layer = last.name
            self.method = f"Grad-CAM on {last.name}"
        else:
            cut = -1  # the image itself
            self.layer = None
            self.method = "gradients × input"
        final = layers[-1]
        kind = type(final).__name__
        # A model ending in softmax is explained through its logits: the softmax's gradients vanish once
        # the model is sure, and they mix every class in.
        logits_of_final = (kind == "Softmax" or (kind == "Activation" and _layer_activation(final)[0] == "softmax"))
        dense_softmax = kind == "Dense" and _layer_activation(final)[0] == "softmax"
        kernel = tf.constant(np.asarray(final.kernel, dtype=np.float32)) if dense_softmax else None
        bias = (tf.constant(np.asarray(final.bias, dtype=np.float32)) if dense_softmax and final.use_bias
                else None)

        def forward(x, tape):
            # Layer by layer (the run's models are Sequential): the feature map and the score come from
            # one pass, so the tape sees the score depend on the feature map.
            h = x
            features = None
            if cut < 0:
                tape.watch(h)
                features = h
            for i, layer in enumerate(layers[:-1]):
                h = layer(h, training=False)
                if i == cut:
                    features = h
            if logits_of_final:
                score = h
            elif kernel is not None:
                score = tf.matmul(h, kernel) + (bias if bias is not None else 0.0)
            else:
                score = final(h, training=False)
                if cut == len(layers) - 1:
                    features = score
            return features, score

        def explain(x, k):
            with tf.GradientTape() as tape:
                features, s = forward(x, tape)
                target = tf.gather(s[0], k)
            grads = tape.gradient(target, features)
            # Gradient × activation at each position, summed over channels (both methods).
            cam = tf.reduce_sum(grads[0] * features[0], axis=-1)
            return tf.nn.relu(cam), s[0]

        spec = [tf.TensorSpec((1, *self.input_shape), tf.float32), tf.TensorSpec((), tf.int32)]
        self._explain = tf.function(explain, input_signature=spec).get_concrete_function()
        self._tf = tf
        self._answer: tuple[bytes, int, float] | None = None  # (image bytes, answer, its map's peak): the last one

    def _cam(self, x: np.ndarray, class_index: int) -> tuple[np.ndarray, float]:
        """The raw map at the input's size (not scaled) and the raw maximum before resizing."""
        tf = self._tf
        cam, _ = self._explain(tf.constant(x), tf.constant(int(class_index), tf.int32))
        cam = np.asarray(cam, dtype=np.float32)
        h, w = self.input_shape[:2]
        strength = float(cam.max(initial=0.0))
        if cam.shape != (h, w):
            from PIL import Image

            cam = np.asarray(Image.fromarray(cam, mode="F").resize((w, h), Image.Resampling.BILINEAR))
        return np.clip(cam, 0.0, None), strength

    def _answer_peak(self, x: np.ndarray) -> tuple[int, float]:
        """The model's answer for x and the peak of its map (the common scale), kept for the last image."""
        key, cached = x.tobytes(), self._answer  # one read: other sessions may share this Saliency
        if cached is None or cached[0] != key:
            _, scores = self._explain(self._tf.constant(x), self._tf.constant(0, self._tf.int32))
            answer = int(np.argmax(np.asarray(scores)))
            cached = (key, answer, float(self._cam(x, answer)[0].max(initial=0.0)))
            self._answer = cached
        return cached[1], cached[2]

    def __call__(self, x: np.ndarray, class_index: int | None = None) -> SaliencyMap:
        """The map for class `class_index` (default: the model's answer) on the image x (H, W, C).

        Every class's map is scaled to the brightest spot of the answer's map (clipped at 1), so the
        maps of different classes compare: a class with little evidence stays dark. Only when the
        answer's map is empty is a map scaled to its own brightest spot.
        """
        x = np.asarray(x, dtype=np.float32).reshape(1, *self.input_shape)
        answer, answer_peak = self._answer_peak(x)
        class_index = answer if class_index is None else int(class_index)
        cam, strength = self._cam(x, class_index)
        peak = float(cam.max(initial=0.0))
        scale = answer_peak if answer_peak > 0 else peak
        h, w = self.input_shape[:2]
        heat = np.clip(cam / scale, 0.0, 1.0) if scale > 0 else np.zeros((h, w), dtype=np.float32)
        relative = peak / answer_peak if answer_peak > 0 else (1.0 if peak > 0 else 0.0)
        return SaliencyMap(heat=heat.astype(np.float32), class_index=class_index, method=self.method,
                           strength=strength, relative=relative)


def saliency_sentence(smap: SaliencyMap, class_names: Sequence[str], predicted: int) -> str:
    """What the map shows, naming the class once: "Where the model would find evidence for **8**: …"."""
    name = class_names[smap.class_index]
    if smap.strength <= 0:
        return (f"Nothing in this image speaks for **{name}**: every part of it argues against it "
                f"({smap.method}).")
    if smap.class_index == predicted:
        return (f"Where the model found the evidence for its answer, **{name}**: bright means these pixels pushed "
                f"the score of {name} up ({smap.method}, scaled to its brightest spot; every other class's map "
                "uses the same scale).")
    return (f"Where the model would find evidence for **{name}**: bright means these pixels pushed the score of "
            f"{name} up. Drawn on the same scale as the answer's map ({smap.method}): its brightest spot is "
            f"{smap.relative:.0%} as strong as the answer's.")


# --- pictures ------------------------------------------------------------------------------------
# A perceptual dark-blue → red → yellow ramp (like matplotlib's "inferno", in five stops).
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32) / 255


def colourise(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] → (H, W, 3) float RGB on the heat ramp."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(v.astype(int), len(_RAMP) - 2)
    t = (v - i)[..., None]
    return _RAMP[i] * (1 - t) + _RAMP[i + 1] * t


def overlay(x: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image x (H, W, 1|3) in [0, 1] in grey with the heat map over it: (H, W, 3) float in [0, 1]."""
    x = np.asarray(x, dtype=np.float32)
    grey = x[..., 0] if x.shape[-1] == 1 else x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    base = np.repeat(grey[..., None], 3, axis=-1) * 0.8
    heat = np.asarray(heat, dtype=np.float32)
    a = (alpha * np.clip(heat, 0, 1))[..., None]
    return np.clip(base * (1 - a) + colourise(heat) * a, 0.0, 1.0)


def mark(values: np.ndarray, origin: tuple[int, int], size: tuple[int, int], factor: int) -> np.ndarray:
    """An image (H, W) or (H, W, 3) in [0, 1], enlarged `factor` times (nearest neighbour), with a red frame
    around the cells origin … origin + size (the part inside the image): (H·f, W·f, 3) uint8."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    rgb = np.repeat(v[..., None], 3, axis=-1) if v.ndim == 2 else v[..., :3]
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    img = np.rint(big * 255).astype(np.uint8)
    h, w = v.shape[:2]
    top, left = max(origin[0], 0), max(origin[1], 0)
    bottom, right = min(origin[0] + size[0], h), min(origin[1] + size[1], w)
    if bottom <= top or right <= left:
        return img
    t = max(1, factor // 3)
    y0, y1, x0, x1 = top * factor, bottom * factor, left * factor, right * factor
    red = np.array([230, 40, 40], dtype=np.uint8)
    img[y0 : y0 + t, x0:x1] = red
    img[y1 - t : y1, x0:x1] = red
    img[y0:y1, x0 : x0 + t] = red
    img[y0:y1, x1 - t : x1] = red
    return img


def grid_markdown(values: np.ndarray, padding: np.ndarray | None = None) -> str:
    """A k×k grid of numbers as a monospaced block for a page; cells of the padding read "pad·0"."""
    rows = []
    for r in range(values.shape[0]):
        cells = []
        for c in range(values.shape[1]):
            if padding is not None and padding[r, c]:
                cells.append(f"{'pad·0':>7}")
            else:
                cells.append(f"{float(values[r, c]) + 0.0:>7.3f}")
        rows.append(" ".join(cells))
    return "```\n" + "\n".join(rows) + "\n```"
