"""Model files a student brings: `.keras`, Keras 2's HDF5 whole models, and Keras 2's JSON with HDF5 weights.

The labs saved their models the way Keras 2 did: `model.save('cnn_mnist_model.h5')` (lab B),
`model.to_json()` plus `model.save_weights('model_digit.h5')` (lab C), `model.save('…h5py')` (lab D).
`read_model` recognises each by its content, never its name (a zip is a `.keras` file; the HDF5
signature is an HDF5 file, whatever its extension; a JSON object is an architecture that needs its
weights), then checks it before anything large is built: the file's size, the configuration's size,
nesting and layer count, the parameters its weights declare (read from HDF5 headers with h5py), and
no Lambda layer (Python code stored in the file, refused in every format). Only then does Keras load it,
with safe mode on and under the Keras guard so another session's `clear_session` cannot interrupt the load.
A Keras 2 JSON with its weights file is joined into the HDF5 whole model `model.save` would have written,
so every Keras 2 model takes Keras's own legacy reader. Whether a model fits a dataset is
`evaluation.check_model_fits`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit import limits
from cnnkit.errors import ModelFileError
from cnnkit.spec import json_depth

log = logging.getLogger(__name__)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Layers that hold Python code (Keras 2 wrote the last two for TensorFlow operations in functional models).
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")
_SAVE_HINT = "save your model with model.save('my_model.keras') (or model.save('my_model.h5')) and upload that file"


@dataclass(frozen=True)
class ModelFile:
    """A model read from a file, with what was read and how, in words for the page."""

    model: Any
    format: str  # "keras", "hdf5" (a Keras 2 whole model) or "json+hdf5" (architecture and weights)
    filename: str
    params: int
    sentence: str  # e.g. "Keras 2 model (HDF5), read as Keras 3; 1,199,882 parameters."


def load_model_file(data: bytes, filename: str = "model.keras") -> Any:
    """The Keras model in an uploaded file (see `read_model`); ModelFileError with a sentence if we can't."""
    return read_model(data, filename).model


def read_uploads(files: list[tuple[str, bytes]]) -> ModelFile:
    """`read_model` for the files a student uploads together: one model file, or an architecture (JSON) and
    its HDF5 weights in either order."""
    if len(files) == 1:
        return read_model(files[0][1], files[0][0])
    if len(files) == 2:
        json_first = sorted(files, key=lambda f: not f[1].lstrip()[:1] == b"{")
        if json_first[0][1].lstrip()[:1] == b"{":
            (name, data), (weights_name, weights) = json_first
            return read_model(data, name, weights, weights_name)
    raise ModelFileError(f"Upload one model file, or two: a model's architecture (.json, from model.to_json()) and "
                         f"its weights (.h5, from model.save_weights); these {len(files)} files are neither.")


def read_model_path(path: str | os.PathLike, weights: str | os.PathLike | None = None) -> ModelFile:
    """`read_model` for files on disk (the command line); their sizes are checked before they are read."""
    files = [Path(path)] + ([Path(weights)] if weights else [])
    for f in files:
        try:
            _check_file_size(f.stat().st_size, f.name)
        except OSError as err:
            raise ModelFileError(f"Cannot read {f} ({err.strerror or err}).") from None
    return read_model(files[0].read_bytes(), files[0].name,
                      files[1].read_bytes() if weights else None, files[1].name if weights else "")


def read_model(data: bytes, filename: str = "model.keras", weights: bytes | None = None,
               weights_name: str = "") -> ModelFile:
    """Read a model from a file's bytes (and, for a Keras 2 JSON architecture, its HDF5 weights file's bytes).

    Safe mode refuses Python code stored in the file (a Lambda layer), since running a stranger's code
    on the lecturer's machine is how files attack.
    """
    name = filename or "the file"
    _check_file_size(len(data), name)
    if weights is not None:
        _check_file_size(len(weights), weights_name or "the weights file")
    if data.startswith(HDF5_SIGNATURE):
        if weights is not None:
            raise ModelFileError(f"{name} is a whole model already (HDF5); upload it alone, without "
                                 f"{weights_name or 'a weights file'}.")
        return _read_hdf5(data, name)
    if zipfile.is_zipfile(io.BytesIO(data)):
        return _read_keras(data, name)
    if data.lstrip()[:1] == b"{":
        return _read_json(data, name, weights, weights_name or "the weights file")
    if name.lower().endswith(".keras"):
        raise ModelFileError(f"{name} is damaged or is not a Keras model (a .keras file is a zip archive); "
                             "save the model again with model.save('my_model.keras') and upload the new file.")
    raise ModelFileError(f"{name} is not a .keras file, a Keras 2 model (HDF5) or a model architecture (JSON); "
                         f"{_SAVE_HINT}.")


def save_as_run(found: ModelFile, dataset_name: str, owner: str | None = None, root: Any = None,
                test_accuracy: float | None = None, test_loss: float | None = None):
    """Save a model read from a file as one of the student's runs: the model as `.keras`, an empty training
    history, settings left at their defaults, and metrics saying where it came from (`Run.from_file`)."""
    from cnnkit import runs
    from cnnkit.hyper import Hyper
    from cnnkit.spec import ModelSpec

    shape = tuple(int(s) for s in found.model.input_shape[1:])
    metrics: dict[str, Any] = {"source": "file", "file": found.filename, "format": found.format,
                               "read": found.sentence, "params": found.params, "epochs_run": 0}
    if test_accuracy is not None:
        metrics["test_accuracy"] = float(test_accuracy)
    if test_loss is not None:
        metrics["test_loss"] = float(test_loss)
    # The architecture lives in the model file; the spec only records the input (a file's layers need not be
    # ones the Architecture page can build).
    spec = ModelSpec(shape, [], name="")
    try:
        return runs.save_run(found.model, spec, Hyper(), {}, metrics, dataset_name=dataset_name, root=root,
                             owner=owner, title=f"From {found.filename}")
    except OSError as err:   # a read-only or full runs folder: a sentence (and the lecturer's note), no path
        from cnnkit import disk_faults

        raise ModelFileError(disk_faults.record("runs", err)) from None


# --- the three formats ----------------------------------------------------------------------
def _read_keras(data: bytes, name: str) -> ModelFile:
    damaged = (f"{name} is damaged or is not a Keras model (it has no model configuration inside); "
               "save the model again with model.save('my_model.keras') and upload the new file.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "config.json" not in members:
                raise ModelFileError(damaged)
            _check_config_size(members["config.json"].file_size, name)
            for info in members.values():   # what each member unpacks to, from the zip's headers, before any read
                limits.check("model_file_bytes", info.file_size, ModelFileError, f"A file inside {name} unpacks to",
                             "A lab's model is a few megabytes: choose a smaller model.")
            if archive.testzip() is not None:   # reads each member in 1 MB pieces, no further than its header says
                raise zipfile.BadZipFile
            config = _checked_config(archive.read("config.json").decode("utf-8", "replace"), name)
            params = 0
            if "model.weights.h5" in members:
                params = _declared_params(archive.read("model.weights.h5"), ("layers", ""), name)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError):
        raise ModelFileError(f"{name} is damaged: its archive or the weights inside cannot be read; save the model "
                             "again with model.save('my_model.keras') and upload the new file.") from None
    _check_build_memory(max(params, config_params(config)), len(data), name)
    del config
    model = _keras_load(data, "uploaded.keras", name)
    return ModelFile(model, "keras", name, _count(model, params),
                     f"Keras 3 model (.keras); {_count(model, params):,} parameters.")


def _read_hdf5(data: bytes, name: str) -> ModelFile:
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            raw = f.attrs.get("model_config")
            version = _text(f.attrs.get("keras_version", ""))
            if raw is None:
                layers = f.attrs.get("layer_names")
                if layers is not None or "model_weights" not in f:
                    raise ModelFileError(
                        f"{name} holds only a model's weights (model.save_weights), not the model itself; upload "
                        "it together with the architecture saved by model.to_json(), or save the whole model "
                        "with model.save('my_model.h5') and upload that file.")
                raise ModelFileError(f"{name} is an HDF5 file with no model configuration inside; {_SAVE_HINT}.")
            config = _checked_config(_text(raw), name)
            params = _declared_params(f, ("model_weights",), name)
    except (OSError, ValueError, KeyError):
        raise ModelFileError(f"{name} is damaged: it starts like an HDF5 file but cannot be read as one; "
                             f"{_SAVE_HINT}.") from None
    _check_build_memory(max(params, config_params(config)), len(data), name)
    model = _keras_load(data, "uploaded.h5", name)
    return ModelFile(model, "hdf5", name, _count(model, params),
                     f"{_keras_major(version)} model (HDF5{_extension_note(name)}), read as Keras 3; "
                     f"{_count(model, params):,} parameters.")


def _read_json(data: bytes, name: str, weights: bytes | None, weights_name: str) -> ModelFile:
    import h5py

    _check_config_size(len(data), name)
    text = data.decode("utf-8", "replace")
    config = _checked_config(text, name)
    if weights is None:
        raise ModelFileError(f"{name} is a model's architecture (model.to_json()) without its weights; upload it "
                             "together with the weights file written by model.save_weights('…h5').")
    if not weights.startswith(HDF5_SIGNATURE):
        raise ModelFileError(f"{weights_name} is not an HDF5 weights file; upload the file written by "
                             "model.save_weights('my_weights.h5') with the architecture.")
    _check_build_memory(config_params(config), len(weights) + len(data), name)
    with tempfile.TemporaryDirectory(prefix="cnnkit-upload-") as tmp:
        path = Path(tmp) / "joined.h5"
        path.write_bytes(weights)
        try:  # the whole model model.save would have written: this configuration over these weights
            with h5py.File(path, "r+") as f:
                if "model_config" in f.attrs or "model_weights" in f:
                    raise ModelFileError(f"{weights_name} is a whole model, not a weights file; upload it alone.")
                params = _declared_params(f, ("",), weights_name)
                _check_build_memory(max(params, config_params(config)), len(weights) + len(data), name)
                group = f.create_group("model_weights")
                for key in list(f.keys()):
                    if key != "model_weights":
                        f.move(key, f"model_weights/{key}")
                for key, value in f.attrs.items():
                    group.attrs[key] = value
                version = _text(f.attrs.get("keras_version", config.get("keras_version", "")))
                mapped = _as_saved_by_model_save(config)
                f.attrs["model_config"] = json.dumps(config)
        except (OSError, ValueError, KeyError):
            raise ModelFileError(f"{weights_name} is damaged: it cannot be read as an HDF5 weights file.") from None
        model = _keras_load(path.read_bytes(), "uploaded.h5", f"{name} with {weights_name}")
    return ModelFile(model, "json+hdf5", name, _count(model, params),
                     f"{_keras_major(version)} architecture (JSON) with its weights ({weights_name}), read as "
                     f"Keras 3 ({mapped} layer class paths mapped); {_count(model, params):,} parameters.")


# --- checks before anything is built -----------------------------------------------------------
def _check_file_size(n_bytes: int, name: str) -> None:
    limits.check("model_file_bytes", n_bytes, ModelFileError, f"{name} is",
                 "A lab's model is a few megabytes: choose a smaller model.")


# Loading a model takes about this many times its float32 weights (measured: a 7.6-million-parameter Dense model
# added 120 MB to the process as a .keras file and 150 MB as HDF5, 4 and 4.9 times its 30 MB of weights: the
# variables, the arrays read from the file and Keras's copies between them).
BUILD_OVERHEAD = 5


def build_peak_bytes(params: int, file_bytes: int) -> int:
    """What loading a model of `params` parameters from `file_bytes` bytes of files adds to the process: its
    float32 weights BUILD_OVERHEAD times, and the file twice (the temporary copy Keras reads, and what it reads)."""
    return 4 * BUILD_OVERHEAD * params + 2 * file_bytes


def _check_build_memory(params: int, file_bytes: int, name: str) -> None:
    """The model file's build against the action budget, from its declared parameters, before Keras builds it."""
    limits.check_memory(build_peak_bytes(params, file_bytes), ModelFileError,
                        f"Building the model in {name} ({params:,} parameters)",
                        "Choose a smaller model (fewer units in its Dense layers, fewer filters) and save it again.")


def _check_config_size(n_bytes: int, name: str) -> None:
    limits.check("spec_bytes", n_bytes, ModelFileError, f"The model configuration in {name} is",
                 "A lab's model configuration is a few kilobytes.")


def _checked_config(text: str, name: str) -> dict:
    """The model configuration, parsed once its size and depth are known; its layers counted; no code inside."""
    _check_config_size(len(text.encode("utf-8")), name)
    limits.check("json_depth", json_depth(text), ModelFileError, f"The model configuration in {name} nests",
                 "A lab's model nests a few levels.")
    try:
        config = json.loads(text)
    except ValueError as err:
        raise ModelFileError(f"{name} is damaged: its model configuration is not JSON ({err.msg}); "
                             f"{_SAVE_HINT}.") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{name} is JSON but not a Keras model architecture (model.to_json()); {_SAVE_HINT}.")
    classes = list(_layer_classes(config))
    limits.check("spec_layers", len(classes), ModelFileError, f"{name} has", "A lab's model has a few dozen layers.")
    code = sorted({c for c in classes if c in CODE_LAYERS})
    if code:
        raise ModelFileError(_lambda_sentence(name, code[0]))
    limits.check("model_params", config_params(config), ModelFileError, f"{name} declares",
                 "CNN Lab reads models up to the size of the labs' own.")
    return config


def config_params(config: dict) -> int:
    """The parameters a model configuration declares, counted from its layers' settings without building
    anything (Keras would allocate every weight first: a 100 kB file with Dense(100000) is gigabytes).

    Shapes are followed layer by layer through the layers the labs use (convolutions, pooling, Flatten, Dense,
    BatchNormalization and the shape-keeping ones); past a layer it does not know, a Dense layer counts as if
    its input had one value — a lower bound, never an overestimate that would refuse a model that fits.
    """
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return 0
    shape: tuple[int, ...] | None = None
    total = 0
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("config"), dict):
            shape = None
            continue
        cls, c = str(layer.get("class_name", "")), layer["config"]
        declared = c.get("batch_shape") or c.get("batch_input_shape")
        if isinstance(declared, list) and declared[1:] and all(_whole(d) for d in declared[1:]):
            shape = tuple(int(d) for d in declared[1:])
        n, shape = _layer_params(cls, c, shape)
        total += n
    return total


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9


def _pair(value: Any, default: int) -> int:
    value = value[0] if isinstance(value, list) and value else value
    return int(value) if _whole(value) else default


def _layer_params(cls: str, c: dict, shape: tuple[int, ...] | None) -> tuple[int, tuple[int, ...] | None]:
    """(parameters, output shape) of one layer from its configuration; shape None when unknown."""
    bias = 1 if c.get("use_bias", True) else 0
    if cls == "Dense":
        units = _pair(c.get("units"), 0)
        fan_in = shape[-1] if shape else 1
        return fan_in * units + bias * units, (shape[:-1] + (units,)) if shape else None
    if cls in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        conv = cls == "Conv2D"
        k = _pair(c.get("kernel_size") if conv else c.get("pool_size"), 1 if conv else 2)
        stride = _pair(c.get("strides"), 1 if conv else k)
        filters = _pair(c.get("filters"), 1)
        if shape is None or len(shape) != 3:
            return (k * k * filters + bias * filters if conv else 0), None
        h, w, cin = shape
        same = c.get("padding") == "same"
        out = [(-(-d // stride) if same else max(0, (d - k) // stride + 1)) for d in (h, w)]
        cout = filters if conv else cin
        return (k * k * cin * filters + bias * filters if conv else 0), (out[0], out[1], cout)
    if cls == "Flatten":
        return 0, (math.prod(shape),) if shape else None
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return 0, (shape[-1],) if shape else None
    if cls == "BatchNormalization":
        return (4 * shape[-1] if shape else 0), shape
    if cls in ("InputLayer", "Dropout", "SpatialDropout2D", "Activation", "ReLU", "LeakyReLU", "Softmax",
               "Rescaling", "GaussianNoise", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom"):
        return 0, shape
    return 0, None


def _layer_classes(config: Any):
    """The class name of every layer in a model configuration, nested models included."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            for layer in inner["layers"]:
                if isinstance(layer, dict):
                    yield str(layer.get("class_name", ""))
                    yield from _layer_classes(layer)
        for key in ("layer", "forward_layer", "backward_layer"):  # wrappers (TimeDistributed, Bidirectional)
            if isinstance(inner, dict) and isinstance(inner.get(key), dict):
                yield str(inner[key].get("class_name", ""))


def _as_saved_by_model_save(config: dict) -> int:
    """Map `to_json()`'s layer class paths ("module": "keras.layers") to the plain class names that
    `model.save` writes in an HDF5 file, which Keras 3's legacy reader understands; how many were mapped."""
    mapped = 0
    inner = config.get("config")
    for layer in inner.get("layers", []) if isinstance(inner, dict) else []:
        if isinstance(layer, dict) and str(layer.get("module", "")).startswith(("keras.", "tf_keras.")):
            layer.pop("module")
            layer.pop("registered_name", None)
            mapped += 1 + _as_saved_by_model_save(layer)
    return mapped


def _declared_params(source: Any, groups: tuple[str, ...], name: str) -> int:
    """The number of weights stored in an HDF5 file's groups, from the datasets' headers (nothing is read)."""
    import h5py

    f = h5py.File(io.BytesIO(source), "r") if isinstance(source, bytes) else source
    total = 0

    def add(_path, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.size)

    try:
        for group in groups:  # the first of these groups the file has
            if not group:
                f.visititems(add)
                break
            if isinstance(f.get(group), h5py.Group):
                f[group].visititems(add)
                break
    finally:
        if isinstance(source, bytes):
            f.close()
    limits.check("model_params", total, ModelFileError, f"{name} declares",
                 "CNN Lab reads models up to the size of the labs' own.")
    return total


# --- loading ------------------------------------------------------------------------------
def _keras_load(data: bytes, tmp_name: str, name: str) -> Any:
    import keras

    from cnnkit.keras_guard import guarded

    with tempfile.TemporaryDirectory(prefix="cnnkit-upload-") as tmp:
        path = Path(tmp) / tmp_name  # Keras picks its reader by the extension: ours, not the student's
        path.write_bytes(data)
        try:
            with guarded():  # no clear_session of another session in the middle of the load
                return keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises ValueError/TypeError/KeyError/OSError for bad content
            # Keras's own words hold Python reprs (<class 'keras.src…'>, <Conv2D name=…, built=True>) and our
            # temporary path: the student gets a sentence of ours, the log keeps Keras's.
            text = str(err)
            log.info("cnnkit: a model file was refused by Keras: %s", plain_error(text, tmp, name)[:500])
            if "Lambda" in text or "safe_mode" in text:
                raise ModelFileError(_lambda_sentence(name, "Lambda")) from None
            low = text.lower()
            if "mismatch" in low or "could not be loaded" in low or ("expected" in low and "weight" in low):
                raise ModelFileError(f"The weights in {name} do not fit its architecture (a layer's weights have "
                                     "another shape or count); upload the architecture and weights saved from the "
                                     "same model.") from None
            raise ModelFileError(
                f"{name} could not be read as a Keras model: a layer in it is not one of Keras's built-in layers, "
                "or has a setting this Keras cannot read (it may come from a newer Keras) — save it again with "
                "built-in layers and re-upload."
            ) from None


def _lambda_sentence(name: str, layer: str) -> str:
    return (f"{name} contains a {layer} layer (Python code stored in the file), which CNN Lab refuses to run for "
            "safety; replace it with built-in layers such as Rescaling, save again and re-upload.")


def _count(model: Any, declared: int) -> int:
    try:
        return int(model.count_params())
    except (ValueError, AttributeError):
        return declared


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _keras_major(version: str) -> str:
    return f"Keras {version.split('.')[0]}" if version[:1].isdigit() else "Keras"


def _extension_note(name: str) -> str:
    ext = Path(name).suffix.lower()
    return "" if ext in (".h5", ".hdf5") else f", named {ext or 'without an extension'}"


_REPR = re.compile(r"<[^<>\n]{0,200}? at 0x[0-9a-fA-F]+>")
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+-]+/)+[\w.+-]*")


def plain_error(text: str, tmp: str | os.PathLike, name: str) -> str:
    """A library's error text fit for a student: our temporary file named as their file, any other server path
    and any Python object's repr (`<_io.BytesIO object at 0x7f…>`) left out."""
    text = text.replace(str(tmp), "").replace("/uploaded.keras", name).replace("/uploaded.h5", name)
    return _PATH.sub("…", _REPR.sub("…", text))


