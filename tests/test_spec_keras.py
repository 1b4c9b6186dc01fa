"""Property tests: the catalogue's shapes and parameter counts equal Keras's own, for hundreds of random specs.

Keras is the oracle: every random valid spec is built with `to_keras()` (no
compile, no fit) and each layer's output shape, name and parameter count must
equal the analytic summary. Specs that our validation rejects for a shape
must also be rejected by Keras.
"""

from __future__ import annotations

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnkit import layers
from cnnkit.spec import LayerSpec, ModelSpec

L = LayerSpec.new

input_shapes = st.sampled_from([(28, 28, 1), (32, 32, 3), (8, 8, 1), (5, 7, 2), (16, 12, 3), (1, 1, 4)])
activations = st.sampled_from(list(layers.ACTIVATIONS))
rates = st.floats(0.0, 0.95, allow_nan=False)


def image_layer(draw) -> LayerSpec:
    kind = draw(st.sampled_from(["Conv2D", "Conv2D", "MaxPooling2D", "AveragePooling2D", "BatchNormalization",
                                 "SpatialDropout2D", "Dropout", "ReLU", "LeakyReLU"]))
    if kind == "Conv2D":
        return L(kind, filters=draw(st.integers(1, 24)), kernel_size=draw(st.integers(1, 6)),
                 strides=draw(st.integers(1, 3)), padding=draw(st.sampled_from(["valid", "same"])),
                 activation=draw(activations), use_bias=draw(st.booleans()))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return L(kind, pool_size=draw(st.integers(1, 4)), strides=draw(st.one_of(st.none(), st.integers(1, 3))),
                 padding=draw(st.sampled_from(["valid", "same"])))
    if kind == "BatchNormalization":
        return L(kind, momentum=draw(st.floats(0.5, 0.999)))
    if kind in ("Dropout", "SpatialDropout2D"):
        return L(kind, rate=draw(rates))
    if kind == "LeakyReLU":
        return L(kind, negative_slope=draw(st.floats(0.0, 1.0)))
    return L(kind)


def vector_layer(draw) -> LayerSpec:
    kind = draw(st.sampled_from(["Dense", "Dense", "Dropout", "BatchNormalization", "ReLU", "LeakyReLU", "Flatten"]))
    if kind == "Dense":
        return L(kind, units=draw(st.integers(1, 64)), activation=draw(activations))
    if kind == "Dropout":
        return L(kind, rate=draw(rates))
    return L(kind)


@st.composite
def valid_specs(draw) -> tuple[ModelSpec, int]:
    """A random spec that validates: image layers (dropping any that would shrink below 1×1), a head, softmax."""
    spec = ModelSpec(draw(input_shapes), [])
    for _ in range(draw(st.integers(0, 8))):
        spec.layers.append(image_layer(draw))
        if not spec.summary().complete:
            spec.layers.pop()
    spec.layers.append(L(draw(st.sampled_from(["Flatten", "GlobalAveragePooling2D"]))))
    for _ in range(draw(st.integers(0, 3))):
        spec.layers.append(vector_layer(draw))
    n = draw(st.integers(2, 12))
    spec.layers.append(L("Dense", units=n, activation="softmax"))
    return spec, n


def assert_matches_keras(spec: ModelSpec, num_classes: int) -> None:
    summary = spec.summary()
    model = spec.to_keras(num_classes)
    assert len(model.layers) == len(summary.rows)
    for layer, row in zip(model.layers, summary.rows, strict=True):
        assert layer.name == row.name
        assert tuple(layer.output.shape[1:]) == row.output_shape, (row.name, spec.to_dict())
        assert layer.count_params() == row.params, (row.name, spec.to_dict())
        trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
        assert trainable == row.trainable, row.name
    assert model.count_params() == summary.total_params


@pytest.fixture(autouse=True, scope="module")
def _fresh_keras():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_specs())
def test_random_valid_specs_match_keras(case):
    spec, n = case
    assert spec.validate(n) == []
    assert_matches_keras(spec, n)


@st.composite
def shrinking_specs(draw) -> ModelSpec:
    """Windows that may not fit: a conv or pooling layer on a small image."""
    size = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["Conv2D", "MaxPooling2D", "AveragePooling2D"]))
    window, stride = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    if kind == "Conv2D":
        layer = L(kind, filters=2, kernel_size=window, strides=stride, padding="valid")
    else:
        layer = L(kind, pool_size=window, strides=stride, padding="valid")
    return ModelSpec((size, size, 1), [layer, L("Flatten"), L("Dense", units=2, activation="softmax")])


@settings(max_examples=60, deadline=None)
@given(shrinking_specs())
def test_keras_agrees_with_our_shape_problems(spec):
    """Where validation says a window does not fit, Keras refuses too; where it fits, both agree on shapes."""
    problems = spec.validate(2)
    if problems:
        assert "below 1×1" in problems[0].message
        entry = layers.get(spec.layers[0].type)
        with pytest.raises(ValueError):
            keras.Sequential([keras.Input(spec.input_shape), entry.build(spec.layers[0].resolved(), "probe")])
    else:
        assert_matches_keras(spec, 2)


def test_dense_on_feature_maps_matches_keras_shapes_even_though_we_refuse_it():
    # The summary still shows what Keras would do (Dense on the last axis), so the student sees why it is wrong.
    spec = ModelSpec((6, 6, 3), [L("Dense", units=5)])
    row = spec.summary().rows[0]
    layer = keras.layers.Dense(5)
    model = keras.Sequential([keras.Input((6, 6, 3)), layer])
    assert tuple(layer.output.shape[1:]) == row.output_shape == (6, 6, 5)
    assert model.count_params() == row.params == 20
