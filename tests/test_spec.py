"""ModelSpec without Keras: JSON round-trip, summary arithmetic, validation messages, the catalogue."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from cnnkit import layers
from cnnkit.errors import SpecError
from cnnkit.spec import LayerSpec, ModelSpec, Problem

L = LayerSpec.new


def lab_a(n: int = 10) -> ModelSpec:
    return ModelSpec((28, 28, 1), [
        L("Conv2D", filters=32, kernel_size=3), L("MaxPooling2D"), L("Flatten"),
        L("Dense", units=100), L("Dense", units=n, activation="softmax"),
    ])


def messages(spec: ModelSpec, num_classes: int | None = 10) -> list[tuple[int | None, str]]:
    return [(p.layer_index, p.message) for p in spec.validate(num_classes)]


# --- catalogue -------------------------------------------------------------------
def test_catalogue_has_every_layer_the_issue_names():
    assert set(layers.CATALOGUE) == {
        "Conv2D", "MaxPooling2D", "AveragePooling2D", "Dropout", "SpatialDropout2D", "BatchNormalization",
        "Flatten", "GlobalAveragePooling2D", "Dense", "ReLU", "LeakyReLU",
    }
    for entry in layers.CATALOGUE.values():
        assert len(entry.explain) > 80 and entry.summary and entry.title
        for p in entry.params:
            assert p.check(p.default) is None, (entry.key, p.name)
            assert p.help and p.label
            if p.kind == "choice":
                assert p.default in p.choices


def param(layer_type: str, name: str) -> layers.ParamDef:
    return next(p for p in layers.get(layer_type).params if p.name == name)


def test_param_checks_say_what_is_wrong():
    rate = param("Dropout", "rate")
    assert rate.check(0.0) is None and rate.check(0.99) is None
    assert "below 1" in rate.check(1.0)
    assert "at least 0" in rate.check(-0.1)
    filters = param("Conv2D", "filters")
    assert "whole number" in filters.check(3.5)
    assert "whole number" in filters.check("32")
    assert filters.check(32.0) is None and filters.coerce(32.0) == 32
    padding = param("Conv2D", "padding")
    assert "valid, same" in padding.check("full")
    assert param("MaxPooling2D", "strides").check(None) is None
    assert "needs a value" in filters.check(None)


# --- summary -----------------------------------------------------------------------
def test_summary_of_lab_a_matches_the_lesson():
    s = lab_a().summary()
    assert [r.output_shape for r in s.rows] == [(26, 26, 32), (13, 13, 32), (5408,), (100,), (10,)]
    assert [r.params for r in s.rows] == [320, 0, 0, 540_900, 1_010]
    assert [r.name for r in s.rows] == ["conv2d", "max_pooling2d", "flatten", "dense", "dense_1"]
    assert s.total_params == s.trainable_params == 542_230
    assert s.non_trainable_params == 0
    assert s.weight_bytes == 4 * 542_230
    # 2 × MACs: conv 26·26·32·(3·3·1), dense 5408·100 and 100·10
    assert s.flops == 2 * (26 * 26 * 32 * 9 + 5408 * 100 + 100 * 10)
    assert s.complete and s.output_shape == (10,)
    text = s.to_text()
    assert "Total params: 542,230" in text and "dense_1 (Dense)" in text and "(None, 13, 13, 32)" in text


def test_batchnorm_counts_two_trainable_and_two_frozen_per_channel():
    spec = ModelSpec((8, 8, 3), [L("Conv2D", filters=16, use_bias=False), L("BatchNormalization"),
                                  L("GlobalAveragePooling2D"), L("Dense", units=4, activation="softmax")])
    s = spec.summary()
    assert s.rows[0].params == 3 * 3 * 3 * 16
    assert (s.rows[1].trainable, s.rows[1].non_trainable) == (32, 32)
    assert s.non_trainable_params == 32
    assert s.rows[2].output_shape == (16,)


@pytest.mark.parametrize("size,window,stride,padding,expected", [
    (28, 3, 1, "valid", 26), (28, 3, 1, "same", 28), (28, 3, 2, "same", 14), (27, 3, 2, "same", 14),
    (28, 3, 2, "valid", 13), (7, 2, None, "valid", 3), (7, 2, None, "same", 4), (7, 3, 2, "valid", 3),
    (1, 5, None, "same", 1),
])
def test_window_arithmetic(size, window, stride, padding, expected):
    pool = ModelSpec((size, size, 2), [L("MaxPooling2D", pool_size=window, strides=stride, padding=padding)])
    assert pool.summary().rows[0].output_shape == (expected, expected, 2)
    conv = ModelSpec((size, size, 2), [L("Conv2D", filters=4, kernel_size=window, strides=stride or window,
                                         padding=padding)])
    assert conv.summary().rows[0].output_shape == (expected, expected, 4)


def test_summary_stops_counting_after_a_broken_layer():
    spec = ModelSpec((4, 4, 1), [L("Conv2D", kernel_size=3), L("Conv2D", kernel_size=3),
                                 L("Flatten"), L("Dense", units=10, activation="softmax")])
    s = spec.summary()
    assert s.rows[0].output_shape == (2, 2, 32)
    assert s.rows[1].output_shape is None and "below 1×1" in s.rows[1].problem
    assert s.rows[3].params is None
    assert not s.complete and s.total_params == 320
    assert "?" in s.to_text()


def test_layer_names_count_per_type_like_a_fresh_keras_session():
    spec = ModelSpec((28, 28, 1), [L("Conv2D"), L("LeakyReLU"), L("Conv2D"), L("LeakyReLU"), L("ReLU"),
                                   L("GlobalAveragePooling2D"), L("Dense", units=10, activation="softmax")])
    assert spec.layer_names() == ["conv2d", "leaky_re_lu", "conv2d_1", "leaky_re_lu_1", "re_lu",
                                  "global_average_pooling2d", "dense"]


# --- validation --------------------------------------------------------------------
def test_valid_spec_has_no_problems():
    assert lab_a().validate(10) == []
    assert lab_a().validate() == []


def test_empty_model_says_where_to_start():
    [(index, msg)] = messages(ModelSpec((28, 28, 1), []))
    assert index is None and "no layers" in msg and "preset" in msg


def test_too_many_pools_shrink_below_one_pixel():
    spec = ModelSpec((28, 28, 1), [L("MaxPooling2D")] * 5 + [L("Flatten"), L("Dense", units=10, activation="softmax")])
    probs = messages(spec)
    assert probs[0][0] == 4
    assert "2×2 window" in probs[0][1] and "1×1 input" in probs[0][1] and "below 1×1" in probs[0][1]


def test_pool_window_larger_than_its_input():
    spec = ModelSpec((28, 28, 1), [L("Conv2D", kernel_size=5, strides=5), L("MaxPooling2D", pool_size=7),
                                   L("Flatten"), L("Dense", units=10, activation="softmax")])
    [(index, msg)] = messages(spec)
    assert index == 1 and "7×7 window" in msg and "larger than its 5×5 input" in msg and "'same'" in msg
    spec.layers[1].params["padding"] = "same"
    assert spec.validate(10) == []


def test_dense_on_feature_maps_asks_for_flatten_and_fixing_it_clears_it():
    spec = lab_a()
    del spec.layers[2]  # remove Flatten
    probs = messages(spec)
    assert probs[0][0] == 2
    assert "3-D tensor (13×13×32)" in probs[0][1] and "Flatten" in probs[0][1]
    spec.layers.insert(2, L("Flatten"))
    assert spec.validate(10) == []


def test_model_ending_in_feature_maps_needs_a_classifier():
    spec = ModelSpec((28, 28, 1), [L("Conv2D"), L("MaxPooling2D")])
    [(index, msg)] = messages(spec)
    assert index is None and "ends with feature maps (13×13×32)" in msg and "softmax" in msg


def test_last_layer_units_and_softmax():
    spec = lab_a(n=5)
    [(index, msg)] = messages(spec, 10)
    assert index == 4 and "5 units" in msg and "10 classes" in msg
    assert spec.validate(5) == []
    spec.layers[-1].params["activation"] = "relu"
    [(index, msg)] = messages(spec, 5)
    assert index == 4 and "softmax" in msg
    spec.layers.append(L("Dropout"))
    [(index, msg)] = messages(spec, 5)
    assert index == 5 and "ends with Dropout" in msg


def test_dropout_rate_outside_range():
    spec = lab_a()
    spec.layers.insert(3, LayerSpec("Dropout", {"rate": 1.0}))
    [(index, msg)] = messages(spec)
    assert index == 3 and "Rate must be below 1" in msg
    spec.layers[3].params["rate"] = -0.5
    assert "at least 0" in messages(spec)[0][1]


def test_spatial_layers_after_flatten():
    spec = lab_a()
    spec.layers.insert(3, L("Conv2D"))
    [(index, msg)] = messages(spec)
    assert index == 3 and "flat vector of 5,408 values" in msg
    spec.layers[3] = L("SpatialDropout2D")
    assert messages(spec)[0][0] == 3


def test_unknown_type_and_setting():
    spec = lab_a()
    spec.layers.insert(0, LayerSpec("Conv3D", {}))
    spec.layers[1].params["dilation"] = 2
    probs = messages(spec)
    assert probs[0][0] == 0 and "'Conv3D' is not a layer type" in probs[0][1]
    assert probs[1][0] == 1 and "no setting 'dilation'" in probs[1][1]


def test_huge_models_are_refused():
    spec = ModelSpec((28, 28, 1), [L("Conv2D", filters=64, padding="same"), L("Flatten"),
                                   L("Dense", units=1024), L("Dense", units=10, activation="softmax")])
    probs = messages(spec)
    assert probs[0][0] is None and "more than the 25,000,000" in probs[0][1]


def test_problem_str_numbers_layers_from_one():
    assert str(Problem(0, "x")) == "Layer 1: x"
    assert str(Problem(None, "y")) == "y"


def test_to_keras_refuses_an_invalid_spec_with_the_reason():
    spec = ModelSpec((28, 28, 1), [L("Conv2D"), L("Dense", units=10, activation="softmax")])
    with pytest.raises(SpecError, match="Layer 2: Dense receives a 3-D tensor"):
        spec.to_keras(10)


# --- JSON ------------------------------------------------------------------------
def test_json_round_trip():
    spec = lab_a()
    spec.name = "my net"
    spec.layers[1].params["strides"] = None
    back = ModelSpec.from_json(spec.to_json())
    assert back == spec and back.input_shape == (28, 28, 1)
    assert json.loads(spec.to_json())["layers"][0]["type"] == "Conv2D"


def test_json_with_partial_params_uses_defaults_and_whole_floats():
    text = json.dumps({"input_shape": [28, 28, 1], "layers": [
        {"type": "Conv2D", "params": {"filters": 8.0}}, {"type": "Flatten"},
        {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]})
    spec = ModelSpec.from_json(text)
    assert spec.validate(10) == []
    assert spec.summary().rows[0].params == 3 * 3 * 8 + 8


@pytest.mark.parametrize("text,words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"input_shape": [28, 28], "layers": []}', "three positive whole numbers"),
    ('{"input_shape": [28, 28, 1]}', "'layers' list"),
    ('{"input_shape": [28, 28, 1], "layers": [3]}', '"type": "Conv2D"'),
    ('{"input_shape": [28, 28, 1], "layers": [{"type": "Dense", "params": 5}]}', "JSON object"),
])
def test_bad_json_gives_a_sentence(text, words):
    with pytest.raises(SpecError, match=words):
        ModelSpec.from_json(text)


def test_with_input_shape_keeps_layers_and_copies():
    spec = lab_a()
    other = spec.with_input_shape((32, 32, 3))
    assert other.summary().rows[0].params == 3 * 3 * 3 * 32 + 32
    other.layers[0].params["filters"] = 8
    assert spec.layers[0].params["filters"] == 32


# --- editing verbs -----------------------------------------------------------------
def types(spec: ModelSpec) -> list[str]:
    return [layer.type for layer in spec.layers]


def test_edit_verbs_return_new_specs_and_leave_the_old_one_alone():
    spec = lab_a()
    before = spec.to_dict()
    added = spec.insert_layer(4, "Dropout")
    assert types(added) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert added.layers[4].params == layers.get("Dropout").resolve({})  # a new layer has every default written
    assert types(spec.insert_layer(None, L("Dense", units=3)))[-1] == "Dense"
    assert types(spec.insert_layer(0, "ReLU"))[0] == "ReLU"
    assert types(spec.remove_layer(2)) == ["Conv2D", "MaxPooling2D", "Dense", "Dense"]
    assert types(spec.move_layer(1, -1)) == ["MaxPooling2D", "Conv2D", "Flatten", "Dense", "Dense"]
    assert types(spec.move_layer(1, 1)) == ["Conv2D", "Flatten", "MaxPooling2D", "Dense", "Dense"]
    assert types(spec.move_layer(0, 3)) == ["MaxPooling2D", "Flatten", "Dense", "Conv2D", "Dense"]
    assert spec.set_param(0, "filters", 8).summary().rows[0].params == 3 * 3 * 8 + 8
    assert spec.with_name("  lab a  ").name == "lab a"
    assert spec.to_dict() == before
    # the new spec shares no layer with the old one: editing it in place later cannot reach back
    edited = spec.set_param(3, "units", 64)
    edited.layers[0].params["filters"] = 1
    assert spec.layers[0].params["filters"] == 32 and spec.layers[3].params["units"] == 100


def test_edits_are_judged_by_validate_as_usual():
    spec = lab_a()
    broken = spec.remove_layer(2)  # no Flatten: the first Dense sees feature maps
    assert messages(broken)[0][0] == 2 and "Add Flatten" in messages(broken)[0][1]
    assert broken.problems_by_layer(10)[2] == [messages(broken)[0][1]]
    assert broken.insert_layer(2, "Flatten").validate(10) == []
    bad = spec.set_param(0, "filters", 0)  # a bad value is kept, and validate says what is wrong under its layer
    assert bad.layers[0].params["filters"] == 0 and list(bad.problems_by_layer(10)) == [0]
    assert bad.set_param(0, "filters", 16).validate(10) == []


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.remove_layer(5), "There is no layer 6: the model has 5 layers."),
    (lambda s: s.remove_layer(-1), "There is no layer 0"),
    (lambda s: s.set_param("0", "filters", 8), "a whole number"),
    (lambda s: s.move_layer(0, -1), "Layer 1 cannot move 1 place up: it would go past the first layer."),
    (lambda s: s.move_layer(4, 1), "Layer 5 cannot move 1 place down: it would go past the last layer."),
    (lambda s: s.insert_layer(6, "Dense"), "There is no layer 7 to put the new layer before: the model has 5"),
    (lambda s: s.insert_layer(0, "Conv3D"), "'Conv3D' is not a layer type"),
    (lambda s: s.set_param(0, "units", 8), "Conv2D has no setting 'units' (its settings: filters,"),
    (lambda s: s.set_param(2, "rate", 0.5), "Flatten has no setting 'rate' (its settings: none)."),
])
def test_impossible_edits_say_why(edit, words):
    spec = lab_a()
    with pytest.raises(SpecError, match=re.escape(words)):
        edit(spec)
    assert types(spec) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


def test_set_param_on_an_unknown_layer_type_asks_to_replace_it():
    spec = ModelSpec((28, 28, 1), [LayerSpec("Conv3D", {})])
    with pytest.raises(SpecError, match="unknown type 'Conv3D'"):
        spec.set_param(0, "filters", 8)
    assert spec.remove_layer(0).layers == []


def test_summary_and_validate_do_not_import_tensorflow():
    code = (
        "import sys; from cnnkit import presets; "
        "[(p.spec.summary(), p.spec.validate(10)) for p in presets.PRESETS.values()]; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# --- command line ------------------------------------------------------------------
def test_cli_summary_of_a_preset(capsys):
    from cnnkit.__main__ import main

    assert main(["summary", "--preset", "single_conv"]) == 0
    out = capsys.readouterr().out
    assert "Total params: 542,230" in out and "(None, 13, 13, 32)" in out and "input 28×28×1" in out


def test_cli_summary_json_for_cifar(capsys):
    from cnnkit.__main__ import main

    assert main(["summary", "--preset", "single_conv", "--dataset", "cifar10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 722_006 and data["problems"] == []
    assert data["layers"][0]["output_shape"] == "30×30×32"


def test_cli_summary_of_a_broken_spec_file(tmp_path, capsys):
    from cnnkit.__main__ import main

    spec = lab_a()
    del spec.layers[2]
    path = tmp_path / "broken.json"
    path.write_text(spec.to_json())
    assert main(["summary", "--spec", str(path)]) == 1
    assert "problem: Layer 3: Dense receives a 3-D tensor" in capsys.readouterr().out
    assert main(["summary", "--spec", str(tmp_path / "missing.json")]) == 2
    assert "Cannot read the spec file" in capsys.readouterr().err
    assert main(["summary", "--preset", "nope"]) == 2
    assert "no preset called 'nope'" in capsys.readouterr().err


def test_cli_presets_and_export(tmp_path, capsys):
    from cnnkit.__main__ import main

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, total in [("single_conv", "542,230"), ("two_conv", "4,738,826"), ("keras_convnet", "34,826")]:
        assert any(line.startswith(name) and total in line for line in out.splitlines())
    assert main(["presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"two_conv_dropout", "fast_cpu"}
    script = tmp_path / "train.py"
    assert main(["export", "--preset", "two_conv_dropout", "--out", str(script)]) == 0
    code = script.read_text()
    compile(code, str(script), "exec")
    assert "LEARNING_RATE = 1.0" in code and "Adadelta(learning_rate=LEARNING_RATE)" in code
    assert "BATCH_SIZE = 128" in code
