"""Model files a student brings are checked before anything is built (issue #26): what a `.keras` unpacks to
and the parameters its configuration declares are refused over the named limits with a sentence and a
bounded peak; a damaged model's sentence shows no server path and no Python repr."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import zipfile

import h5py
import pytest

from cnnkit import model_files
from cnnkit.errors import ModelFileError

PEAK_BYTES = 32_000_000   # what refusing a hostile file may allocate in Python, at most


def dense_config(units: int, *, keras3: bool = True) -> dict:
    """A Sequential configuration: 28×28×1 → Flatten → Dense(units); in Keras 3's or Keras 2's layout."""
    first = ({"class_name": "InputLayer", "config": {"batch_shape": [None, 28, 28, 1], "name": "input"}}
             if keras3 else None)
    flatten = {"class_name": "Flatten", "config": {"name": "flatten"}}
    if not keras3:
        flatten["config"]["batch_input_shape"] = [None, 28, 28, 1]
    layers = [layer for layer in (first, flatten, {"class_name": "Dense", "config": {
        "name": "dense", "units": units, "activation": "softmax", "use_bias": True}}) if layer]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def keras_file(config_text: str | None = None, *, config_bytes: int = 0) -> bytes:
    """A `.keras` archive with this config.json (or `config_bytes` spaces after a `{`, written in pieces), no
    weights: a few kilobytes however large its configuration unpacks."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        if config_text is not None:
            z.writestr("config.json", config_text)
        else:
            with z.open("config.json", "w", force_zip64=True) as fh:
                fh.write(b"{")
                piece = b" " * (8 << 20)
                for _ in range(config_bytes // len(piece)):
                    fh.write(piece)
    return buf.getvalue()


def refused(data: bytes, name: str, monkeypatch) -> tuple[str, int]:
    """The sentence `read_model` refuses `data` with, and the peak it allocated meanwhile; Keras never asked."""
    def never(*args):
        raise AssertionError("Keras was asked to build a model that should have been refused")

    monkeypatch.setattr(model_files, "_keras_load", never)
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        with pytest.raises(ModelFileError) as err:
            model_files.read_model(data, name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(err.value), peak


def test_a_keras_file_whose_configuration_unpacks_to_1_5_gb_is_refused_from_its_header(monkeypatch):
    data = keras_file(config_bytes=1_500_000_000)
    assert len(data) < 8_000_000   # a few megabytes on the wire, under CNNKIT_LIMIT_MODEL_FILE_BYTES
    sentence, peak = refused(data, "huge.keras", monkeypatch)
    assert re.search(r"The model configuration in huge\.keras is 1,\d{3},\d{3},\d{3} bytes", sentence), sentence
    assert "CNNKIT_LIMIT_SPEC_BYTES" in sentence
    assert peak < PEAK_BYTES, f"refusing it allocated {peak:,} bytes"


@pytest.mark.parametrize("fmt", ["keras", "hdf5"])
def test_a_small_file_declaring_dense_100000_is_refused_before_keras_builds_it(monkeypatch, fmt):
    if fmt == "keras":
        data, name = keras_file(json.dumps(dense_config(100_000))), "big.keras"
    else:
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.attrs["model_config"] = json.dumps(dense_config(100_000, keras3=False))
            f.attrs["keras_version"] = "2.15.0"
            f.create_group("model_weights")   # no weights stored: only the configuration declares them
        data, name = buf.getvalue(), "big.h5"
    assert len(data) < 110_000
    sentence, peak = refused(data, name, monkeypatch)
    assert f"{name} declares 78,500,000 parameters" in sentence and "CNNKIT_LIMIT_MODEL_PARAMS" in sentence
    assert peak < PEAK_BYTES, f"refusing it allocated {peak:,} bytes"


def test_the_configurations_count_is_keras_own_for_the_labs_layers():
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, padding="same"),
                              keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(),
                              keras.layers.Conv2D(16, 5, strides=2, use_bias=False), keras.layers.Dropout(0.2),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    config = json.loads(json.dumps(model.get_config() and {"class_name": "Sequential",
                                                           "config": model.get_config()}))
    assert model_files.config_params(config) == model.count_params()
    # Past a layer it does not know, a Dense layer counts as if its input had one value: never an overestimate.
    config["config"]["layers"][2]["class_name"] = "SomethingNew"
    assert model_files.config_params(config) <= model.count_params()


def test_a_damaged_models_sentence_shows_no_server_path_and_no_python_repr(tmp_path):
    import keras

    mine = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                             keras.layers.Dense(3)])
    other = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    mine.save(tmp_path / "mine.keras")
    other.save(tmp_path / "other.keras")
    src, donor = zipfile.ZipFile(tmp_path / "mine.keras"), zipfile.ZipFile(tmp_path / "other.keras")

    def variant(change) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for info in src.infolist():
                z.writestr(info.filename, change(info.filename, src.read(info.filename)))
        return buf.getvalue()

    def unknown_layer(name, data):
        if name != "config.json":
            return data
        config = json.loads(data)
        config["config"]["layers"][1].update(class_name="MyCustomLayer", module="mylib.layers")
        return json.dumps(config)

    cases = {
        "unknown layer": variant(unknown_layer),
        "weights of another model": variant(lambda n, d: donor.read(n) if n == "model.weights.h5" else d),
        "garbage weights": variant(lambda n, d: b"\x89HDF\r\n\x1a\n" + b"x" * 4000 if n == "model.weights.h5" else d),
    }
    for label, data in cases.items():
        with pytest.raises(ModelFileError) as err:
            model_files.read_model(data, "mine.keras")
        text = str(err.value)
        assert "mine.keras" in text, (label, text)
        assert not re.search(r"/(tmp|root|home|work|usr)\b|cnnkit-upload|uploaded\.keras", text), (label, text)
        assert not re.search(r"<[^>]*(class '|name=| at 0x)[^>]*>", text), (label, text)
