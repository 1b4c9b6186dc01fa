"""ModelSpec: a model as plain data — an input shape and a list of layers.

A spec goes to and from JSON, summarises itself like Keras's `model.summary()`
(names, output shapes, parameters, weight memory, FLOPs) from the layer
catalogue's formulas without importing TensorFlow, explains in a student's words
what is wrong with it (`validate`), and builds the Keras model (`to_keras`).

FLOPs are forward FLOPs per image: 2 × multiply-accumulates of Conv2D and Dense
layers (bias adds, activations, pooling and normalisation are not counted).
Weight memory is the parameter count × 4 bytes (float32).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cnnkit import layers
from cnnkit.errors import SpecError

Shape = tuple[int, ...]

# Above this many parameters a model would not train in reasonable time or fit
# in a hosted app's memory (weights + Adam's two moments ≈ 12 bytes/parameter).
MAX_PARAMS = 25_000_000
MAX_LAYERS = 60


@dataclass
class LayerSpec:
    """One layer: a catalogue key (e.g. "Conv2D") and its settings.

    `params` may leave settings out; the catalogue's defaults fill them in
    (see `resolved()`).
    """

    type: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, type: str, **params: Any) -> LayerSpec:
        """A layer of `type` with every setting at its default except those given."""
        return cls(type, layers.get(type).resolve(params))

    def resolved(self) -> dict[str, Any]:
        """The full settings (defaults filled in). KeyError for an unknown type."""
        return layers.get(self.type).resolve(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Any) -> LayerSpec:
        if not isinstance(d, dict) or not isinstance(d.get("type"), str):
            raise SpecError(
                'Each layer must be written as {"type": "Conv2D", "params": {...}}; one of them is not.'
            )
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise SpecError(f'The settings ("params") of the {d["type"]} layer must be a JSON object.')
        return cls(d["type"], dict(params))


@dataclass(frozen=True)
class Problem:
    """Something that stops the model from being built or trained, said for a student.

    `layer_index` is the 0-based position of the layer that causes it, or None
    for a problem of the whole model.
    """

    layer_index: int | None
    message: str

    def __str__(self) -> str:
        if self.layer_index is None:
            return self.message
        return f"Layer {self.layer_index + 1}: {self.message}"


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary. Shape and counts are None after a layer whose shape cannot be worked out."""

    index: int
    name: str  # Keras-style: conv2d, conv2d_1, ... (to_keras gives the layers these names)
    type: str
    output_shape: Shape | None
    params: int | None
    trainable: int | None
    non_trainable: int | None
    flops: int | None
    problem: str | None = None  # why the shape could not be worked out here


@dataclass(frozen=True)
class Summary:
    """What Keras's `model.summary()` shows, plus weight memory and FLOPs."""

    input_shape: Shape
    rows: tuple[SummaryRow, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    weight_bytes: int
    flops: int
    complete: bool  # False when some layer's shape could not be worked out (totals then cover only the rows before it)

    @property
    def output_shape(self) -> Shape | None:
        return self.rows[-1].output_shape if self.rows else self.input_shape

    def table(self) -> list[dict[str, Any]]:
        """Rows as plain dicts for a table (page, command line JSON)."""
        return [
            {
                "layer": r.index + 1,
                "name": r.name,
                "type": r.type,
                "output_shape": format_shape(r.output_shape),
                "params": r.params,
                "trainable": r.trainable,
                "non_trainable": r.non_trainable,
                "flops": r.flops,
            }
            for r in self.rows
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "layers": self.table(),
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "weight_bytes": self.weight_bytes,
            "flops": self.flops,
            "complete": self.complete,
        }

    def to_text(self) -> str:
        """A plain-text table laid out like Keras's `model.summary()`."""
        head = ("Layer (type)", "Output Shape", "Param #")
        body = [
            (f"{r.name} ({r.type})", "(None, " + format_shape(r.output_shape, ", ") + ")"
             if r.output_shape else "?", f"{r.params:,}" if r.params is not None else "?")
            for r in self.rows
        ]
        widths = [max(len(x[i]) for x in [head, *body]) + 3 for i in range(3)]
        line = "─" * sum(widths)

        def fmt(cells: tuple[str, str, str]) -> str:
            return cells[0].ljust(widths[0]) + cells[1].ljust(widths[1]) + cells[2].rjust(widths[2] - 3)

        out = [line, fmt(head), line, *(fmt(b) for b in body), line]
        out += [
            f"Total params: {self.total_params:,} ({format_bytes(self.weight_bytes)})",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            f"Forward FLOPs per image: {format_count(self.flops)} (2 × multiply-adds of Conv2D and Dense)",
        ]
        if not self.complete:
            out.append("Some shapes could not be worked out: the totals cover only the layers before the problem.")
        return "\n".join(out)


def format_shape(shape: Sequence[int | None] | None, sep: str = "×") -> str:
    """A shape as people write it: 28×28×1. An unknown shape is "?", an unknown size in it "any"."""
    if shape is None:
        return "?"
    return sep.join("any" if s is None else str(s) for s in shape) or "()"


def format_bytes(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def format_count(n: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def check_file_size(n_bytes: int) -> None:
    """A model file's size, before it is read or parsed."""
    from cnnkit import limits

    limits.check("spec_bytes", n_bytes, SpecError, "This model file is",
                 "A model saved from the Architecture page is a few kilobytes: choose that file.")


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text (brackets inside strings are not counted), in one pass."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


@dataclass
class ModelSpec:
    """A Sequential CNN as plain data: per-image input shape (H, W, C) and the layers in order."""

    input_shape: tuple[int, int, int]
    layers: list[LayerSpec] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        self.input_shape = tuple(self.input_shape)  # JSON gives lists

    # --- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "cnnlab.modelspec/1",
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: Any) -> ModelSpec:
        """Read a spec written by `to_dict`. Raises SpecError (with a sentence) for a malformed one."""
        if not isinstance(d, dict):
            raise SpecError("A model file must hold a JSON object with 'input_shape' and 'layers'.")
        shape = d.get("input_shape")
        if (
            not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
        ):
            raise SpecError(
                "The model's 'input_shape' must be three positive whole numbers (height, width, channels), "
                f"like [28, 28, 1]; it is {shape!r}."
            )
        raw_layers = d.get("layers")
        if not isinstance(raw_layers, list):
            raise SpecError("The model file needs a 'layers' list.")
        from cnnkit import limits

        limits.check("spec_layers", len(raw_layers), SpecError, "The model file has",
                     f"CNN Lab trains at most {MAX_LAYERS} layers: build a smaller model.")
        if max(shape) > limits.get("image_side"):
            raise SpecError(limits.sentence("image_side", f"The model's input shape is {format_shape(tuple(shape))}, "
                                            "a side of", max(shape), "Use the image size of your dataset."))
        name = d.get("name", "")
        specs = [LayerSpec.from_dict(x) for x in raw_layers]
        for i, layer in enumerate(specs):  # NaN or Infinity, kept in a student's state, would break every page
            if bad := layers.non_finite_setting(layer.type, layer.params):
                raise SpecError(f"Layer {i + 1} ({layer.type}): {bad}. Correct it in the model file, or save the "
                                "model again from the Architecture page.")
        return cls(tuple(shape), specs, str(name or ""))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        """Read a model file. Its size, encoding (UTF-8) and nesting depth are checked before parsing."""
        from cnnkit import limits

        check_file_size(len(text))
        if isinstance(text, (bytes, bytearray)):
            raw = bytes(text)
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise SpecError(
                    f"This model file is not UTF-8 text (byte {err.start} is 0x{raw[err.start]:02x}; it may have been "
                    "saved as Latin-1 or Windows-1252). Save it again as UTF-8, or save the model again from the "
                    "Architecture page."
                ) from None
        depth = json_depth(text)
        limits.check("json_depth", depth, SpecError, "This model file nests its brackets",
                     "A model file is an object with a list of layers (three levels deep): choose a model saved "
                     "from the Architecture page.")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise SpecError(
                f"This file is not valid JSON ({err}). Choose a model file saved from the Architecture page."
            ) from None
        return cls.from_dict(data)

    def copy(self) -> ModelSpec:
        return ModelSpec(self.input_shape, [LayerSpec(l.type, dict(l.params)) for l in self.layers], self.name)

    def with_input_shape(self, input_shape: tuple[int, int, int]) -> ModelSpec:
        """The same layers on another dataset's image shape."""
        spec = self.copy()
        spec.input_shape = tuple(input_shape)
        return spec

    # --- editing: each verb returns a new spec and leaves this one as it is --------------
    def with_name(self, name: str) -> ModelSpec:
        """The same model under another name (surrounding spaces dropped)."""
        spec = self.copy()
        spec.name = str(name).strip()
        return spec

    def insert_layer(self, index: int | None, layer: LayerSpec | str) -> ModelSpec:
        """`layer` (a LayerSpec, or a catalogue key for one with default settings) placed before layer
        `index` (0-based); None, or the number of layers, puts it at the end."""
        if isinstance(layer, str):
            if layer not in layers.CATALOGUE:
                raise SpecError(f"'{layer}' is not a layer type CNN Lab knows. "
                                f"Use one of: {', '.join(layers.LAYER_TYPES)}.")
            layer = LayerSpec.new(layer)
        n = len(self.layers)
        at = n if index is None else index
        if not isinstance(at, int) or isinstance(at, bool):
            raise SpecError(f"A layer's position is a whole number; {index!r} is not one.")
        if not 0 <= at <= n:
            raise SpecError(f"There is no layer {at + 1} to put the new layer before: the model has {n} "
                            f"layer{'s' if n != 1 else ''}.")
        spec = self.copy()
        spec.layers.insert(at, LayerSpec(layer.type, dict(layer.params)))
        return spec

    def remove_layer(self, index: int) -> ModelSpec:
        """Without layer `index` (0-based)."""
        self._check_index(index)
        spec = self.copy()
        del spec.layers[index]
        return spec

    def move_layer(self, index: int, step: int) -> ModelSpec:
        """Layer `index` moved `step` places: -1 is one up (towards the input), +1 one down."""
        self._check_index(index)
        to = index + step
        if not 0 <= to < len(self.layers):
            where = "first" if to < 0 else "last"
            raise SpecError(f"Layer {index + 1} cannot move {abs(step)} place{'s' if abs(step) != 1 else ''} "
                            f"{'up' if step < 0 else 'down'}: it would go past the {where} layer.")
        spec = self.copy()
        spec.layers.insert(to, spec.layers.pop(index))
        return spec

    def set_param(self, index: int, name: str, value: Any) -> ModelSpec:
        """Layer `index` with its setting `name` set to `value`. The value is stored as given: `validate`
        says what is wrong with a bad one, under its layer. A setting the layer type does not have is refused."""
        self._check_index(index)
        layer = self.layers[index]
        entry = layers.CATALOGUE.get(layer.type)
        if entry is None:
            raise SpecError(f"Layer {index + 1} is of the unknown type '{layer.type}': replace it rather than "
                            "change its settings.")
        if name not in entry.param_names:
            allowed = ", ".join(p.name for p in entry.params) or "none"
            raise SpecError(f"{entry.key} has no setting '{name}' (its settings: {allowed}).")
        spec = self.copy()
        spec.layers[index].params[name] = value
        return spec

    def _check_index(self, index: int) -> None:
        n = len(self.layers)
        if not isinstance(index, int) or isinstance(index, bool):
            raise SpecError(f"A layer's position is a whole number; {index!r} is not one.")
        if not 0 <= index < n:
            raise SpecError(f"There is no layer {index + 1}: the model has {n} layer{'s' if n != 1 else ''}.")

    # --- analysis -----------------------------------------------------------
    def layer_names(self) -> list[str]:
        """Keras-style names as a fresh Keras session would give: conv2d, conv2d_1, dense, dense_1, ..."""
        return _layer_names([l.type for l in self.layers])

    def _key(self) -> tuple | None:
        """A hashable picture of the spec for the analysis cache; None if a setting is unhashable (odd JSON)."""
        # The value's class is part of the key: True == 1 == 1.0 would otherwise share an answer.
        key = (tuple(self.input_shape),
               tuple((l.type, tuple((k, v.__class__, v) for k, v in l.params.items())) for l in self.layers))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _walk(self) -> tuple[tuple[SummaryRow, ...], tuple[Problem, ...]]:
        """Shapes, counts and per-layer problems. Page reruns ask for the same spec again and again,
        so results are cached by the spec's content (rows and problems are immutable)."""
        key = self._key()
        if key is not None:
            return _walk_cached(key)
        return _walk(self.input_shape, [(l.type, l.params) for l in self.layers])

    def summary(self) -> Summary:
        """Per-layer output shapes and parameters, and the totals, from the catalogue's formulas."""
        rows, _ = self._walk()
        known = [r for r in rows if r.params is not None]
        trainable = sum(r.trainable for r in known)
        frozen = sum(r.non_trainable for r in known)
        return Summary(
            input_shape=tuple(self.input_shape),
            rows=tuple(rows),
            total_params=trainable + frozen,
            trainable_params=trainable,
            non_trainable_params=frozen,
            weight_bytes=4 * (trainable + frozen),
            flops=sum(r.flops for r in known),
            complete=len(known) == len(rows),
        )

    def validate(self, num_classes: int | None = None, *, refuse_cost: bool = False) -> list[Problem]:
        """Everything that stops this model from training, each said for a student; [] means it is fine.

        With `num_classes`, the last layer must be Dense with that many units and softmax. With
        `refuse_cost` (a class shares the server: the caller decides), a cost over CNN Lab's limits is a
        problem too; otherwise it is only a warning (`cost_warnings`).
        """
        problems: list[Problem] = []
        h, w, c = self.input_shape
        if min(self.input_shape) < 1:
            return [Problem(None, f"The input shape {format_shape(self.input_shape)} is not a valid image shape.")]
        if not self.layers:
            return [Problem(None, "The model has no layers yet: start from a preset or add layers, "
                                  "ending with Flatten and a Dense layer with softmax.")]
        if len(self.layers) > MAX_LAYERS:
            problems.append(Problem(None, f"The model has {len(self.layers)} layers; CNN Lab allows at most "
                                          f"{MAX_LAYERS}. Remove some."))
        rows, walk_problems = self._walk()
        problems += list(walk_problems)
        flagged = {p.layer_index for p in walk_problems}
        # Dense on a feature map: Keras would apply it per pixel, which is never what a student means.
        # Only the first such Dense is named: the ones after it have the same cause and the same fix.
        prev_shape: Shape = tuple(self.input_shape)
        for i, (layer, row) in enumerate(zip(self.layers, rows, strict=True)):
            if row.output_shape is None:
                break
            if layer.type == "Dense" and len(prev_shape) == 3 and i not in flagged:
                problems.append(Problem(i, (
                    f"Dense receives a 3-D tensor ({format_shape(prev_shape)}), not a vector. "
                    "Add Flatten or GlobalAveragePooling2D before it so it sees one vector per image."
                )))
                flagged.add(i)
                break
            prev_shape = row.output_shape

        last_i = len(self.layers) - 1
        last = self.layers[last_i]
        out_shape = rows[-1].output_shape
        if out_shape is not None and len(out_shape) == 3 and last.type != "Dense":
            problems.append(Problem(None, (
                f"The model ends with feature maps ({format_shape(out_shape)}), not one score per class. "
                "Add Flatten (or GlobalAveragePooling2D) and a Dense layer with softmax at the end."
            )))
        elif last.type != "Dense":
            if last.type in layers.CATALOGUE:
                problems.append(Problem(last_i, (
                    f"The model ends with {last.type}. The last layer must be Dense with one unit per class "
                    "and softmax, so that the model outputs class probabilities."
                )))
        elif last_i not in flagged:
            p = last.resolved()
            if num_classes is not None and p.get("units") != num_classes:
                problems.append(Problem(last_i, (
                    f"The last Dense layer has {p.get('units')} units but the dataset has {num_classes} classes: "
                    f"set units to {num_classes}, one per class."
                )))
            if p.get("activation") != "softmax":
                problems.append(Problem(last_i, (
                    f"The last layer uses '{p.get('activation')}'; use softmax so that its outputs are "
                    "probabilities that add up to 1 (the loss expects them)."
                )))
        summary_total = sum(r.params for r in rows if r.params is not None)
        if refuse_cost:
            problems += self.cost_problems()
        if summary_total > MAX_PARAMS:
            problems.append(Problem(None, (
                f"The model has {summary_total:,} parameters, more than the {MAX_PARAMS:,} CNN Lab can train. "
                "Add pooling or strides before Flatten, or use fewer units."
            )))
        return sorted(problems, key=lambda p: (-1 if p.layer_index is None else p.layer_index))

    def cost_problems(self, epochs: int | None = None, train_images: int | None = None) -> list[Problem]:
        """The model's cost over CNN Lab's limits (parameters, FLOPs per image and, given the training
        settings, epochs × images): refused in class mode (`validate` adds them), a warning otherwise."""
        from cnnkit import limits

        summary = self.summary()
        out = []
        if limits.exceeds("model_params", summary.total_params):
            out.append(Problem(None, limits.sentence(
                "model_params", "The model has", summary.total_params,
                "On a server shared by a class that takes too long and too much memory: add pooling or strides "
                "before Flatten, or use fewer filters and units.")))
        mflops = summary.flops / 1e6
        if limits.exceeds("model_mflops", mflops):
            out.append(Problem(None, limits.sentence(
                "model_mflops", "One image costs", round(mflops),
                "Every epoch pays this for every image: use fewer filters, pool earlier or use strides.")))
        if epochs is not None and train_images is not None and limits.exceeds("epoch_images", epochs * train_images):
            out.append(Problem(None, limits.sentence(
                "epoch_images", f"{epochs:,} epochs × {train_images:,} training images is", epochs * train_images,
                "Train for fewer epochs, or on fewer images.")))
        return out

    def cost_warnings(self, refuse_cost: bool = False) -> list[str]:
        """Cost over the limits as warnings on one's own machine; [] with `refuse_cost`, where `validate`
        refuses them."""
        return [] if refuse_cost else [str(p) for p in self.cost_problems()]

    def count_formula(self, index: int) -> str:
        """How layer `index`'s parameter count comes about, with its numbers (e.g. 3×3 × 1 × 32 + 32 = 320)."""
        layer = self.layers[index]
        entry = layers.CATALOGUE.get(layer.type)
        if entry is None:
            return "Unknown layer type."
        rows = self.summary().rows
        in_shape = tuple(self.input_shape) if index == 0 else rows[index - 1].output_shape
        if in_shape is None or rows[index].output_shape is None:
            return "Its input shape cannot be worked out until the problems above it are fixed."
        return entry.explain_count(in_shape, entry.resolve(layer.params))

    def problems_by_layer(self, num_classes: int | None = None, *,
                          refuse_cost: bool = False) -> dict[int | None, list[str]]:
        """`validate()` grouped by layer index (None: the whole model), for showing under each layer."""
        out: dict[int | None, list[str]] = {}
        for p in self.validate(num_classes, refuse_cost=refuse_cost):
            out.setdefault(p.layer_index, []).append(p.message)
        return out

    # --- Keras ----------------------------------------------------------------
    def to_keras(self, num_classes: int | None = None):
        """Build the uncompiled `keras.Sequential` this spec describes.

        Layers get the summary's names. Raises SpecError listing the problems if
        the spec is not valid. Seed with `keras.utils.set_random_seed` first for
        reproducible initial weights.
        """
        problems = self.validate(num_classes)
        if problems:
            raise SpecError("The model cannot be built: " + " ".join(str(p) for p in problems))
        import keras

        built = [layers.get(l.type).build(l.resolved(), n)
                 for l, n in zip(self.layers, self.layer_names(), strict=True)]
        return keras.Sequential([keras.Input(shape=tuple(self.input_shape)), *built], name=keras_model_name(self.name))


@lru_cache(maxsize=512)
def _walk_cached(key: tuple) -> tuple[tuple[SummaryRow, ...], tuple[Problem, ...]]:
    shape, items = key
    return _walk(shape, [(t, {k: v for k, _, v in p}) for t, p in items])


def _walk(input_shape: tuple[int, ...],
          items: list[tuple[str, dict]]) -> tuple[tuple[SummaryRow, ...], tuple[Problem, ...]]:
    """Infer shapes and counts layer by layer; collect per-layer setting and shape problems."""
    rows: list[SummaryRow] = []
    problems: list[Problem] = []
    shape: Shape | None = tuple(input_shape)
    names = _layer_names([t for t, _ in items])
    for i, (type_, given) in enumerate(items):
        entry = layers.CATALOGUE.get(type_)
        if entry is None:
            problems.append(Problem(i, f"'{type_}' is not a layer type CNN Lab knows. "
                                       f"Use one of: {', '.join(layers.LAYER_TYPES)}."))
            rows.append(SummaryRow(i, names[i], type_, None, None, None, None, None, "unknown type"))
            shape = None
            continue
        bad = False
        for key in given:
            if key not in entry.param_names:
                allowed = ", ".join(p.name for p in entry.params) or "none"
                problems.append(Problem(i, f"{entry.key} has no setting '{key}' (its settings: {allowed})."))
        params = entry.resolve(given)
        for pdef in entry.params:
            msg = pdef.check(params[pdef.name])
            if msg:
                problems.append(Problem(i, msg))
                bad = True
        if shape is None or bad:
            rows.append(SummaryRow(i, names[i], entry.key, None, None, None, None, None,
                                   "bad setting" if bad else "input unknown"))
            shape = None
            continue
        try:
            out = entry.output_shape(shape, params)
        except layers.ShapeProblem as err:
            problems.append(Problem(i, str(err)))
            rows.append(SummaryRow(i, names[i], entry.key, None, None, None, None, None, str(err)))
            shape = None
            continue
        trainable, frozen = entry.count_params(shape, params)
        rows.append(SummaryRow(i, names[i], entry.key, out, trainable + frozen, trainable, frozen,
                               entry.flops(shape, out, params)))
        shape = out
    return tuple(rows), tuple(problems)


def _layer_names(types: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for t in types:
        entry = layers.CATALOGUE.get(t)
        stem = entry.keras_name if entry else t.lower()
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        names.append(stem if n == 0 else f"{stem}_{n}")
    return names


def keras_model_name(name: str) -> str:
    """Keras model names may not contain '/'; keep them readable otherwise."""
    cleaned = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in name.strip()).strip("_")
    return cleaned or "cnn"


__all__ = [
    "MAX_PARAMS",
    "LayerSpec",
    "ModelSpec",
    "Problem",
    "Summary",
    "SummaryRow",
    "format_bytes",
    "format_count",
    "format_shape",
    "keras_model_name",
]
