"""AppTest of app_pages/draw.py: the empty state and its quick-start job, the run picker, the answer
for a test image (metric, probabilities, steps, feature maps), and the picture mode of CIFAR-10.

AppTest cannot draw on the canvas (a custom component is an unknown element to it):
tests/test_browser_draw.py draws in a real browser.
"""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pytest

from cnnkit import predict, runs
from cnnkit.hyper import Hyper
from cnnkit.spec import LayerSpec, ModelSpec

PAGE = "app_pages/draw.py"


def make_run(root, dataset_name: str = "mnist", shape=(28, 28, 1), title: str = "tiny", seed: int = 0):
    """An untrained two-conv model saved as a Run: enough to render the page, in a second."""
    import keras

    keras.utils.set_random_seed(seed)
    spec = ModelSpec(tuple(shape), [
        LayerSpec.new("Conv2D", filters=4, kernel_size=3, activation="relu"),
        LayerSpec.new("MaxPooling2D", pool_size=2),
        LayerSpec.new("Conv2D", filters=6, kernel_size=3, activation="relu"),
        LayerSpec.new("Flatten"),
        LayerSpec.new("Dense", units=10, activation="softmax"),
    ], name=title)
    return runs.save_run(spec.to_keras(), spec, hyper=Hyper(), history={}, metrics={"test_accuracy": 0.1},
                         dataset_name=dataset_name, root=root, title=title)


def texts(at) -> str:
    parts = [e.value for e in (*at.info, *at.warning, *at.error, *at.success, *at.markdown, *at.caption)]
    return "\n".join(str(p) for p in parts)


def test_no_run_offers_the_fast_preset_and_trains_it(app_test, runs_dir):
    at = app_test(PAGE)
    assert not at.exception
    assert "no trained model for **MNIST digits** yet" in texts(at)
    assert "about" in texts(at) and "epochs over" in texts(at)
    button = next(b for b in at.button if b.key == "draw_train_fast")
    button.click().run()
    assert not at.exception
    assert "is training on MNIST digits" in texts(at)
    from webapp import training_jobs

    job = training_jobs.job_registry().active_job(at.session_state["owner_id"])
    assert job is not None and job.title == "Lecture preset (quick start)"
    from cnnkit import datasets

    assert job.hyper == predict.first_model_plan(datasets.offline_sample()).hyper and job.state.active
    # Stop it: the test is that the page started the right job and shows its progress.
    next(b for b in at.button if b.key == "draw_stop_job").click().run()
    job.wait()
    assert not job.state.active


def test_latest_run_is_chosen_and_a_test_digit_is_answered(app_test, runs_dir):
    older = make_run(runs_dir, title="older", seed=1)
    time.sleep(0.01)
    newer = make_run(runs_dir, title="newer", seed=2)
    make_run(runs_dir, dataset_name="cifar10", shape=(32, 32, 3), title="other dataset")
    at = app_test(PAGE)
    assert not at.exception
    model_box = at.selectbox(key="_w.draw_run_id")
    # Only this dataset's runs, newest first and chosen; then a model file brought from a lab.
    assert model_box.value == newer.id and len(model_box.options) == 3
    assert model_box.options[0].startswith("newer") and model_box.options[1].startswith("older")
    assert model_box.options[2].startswith("A model file")
    # The canvas is empty (AppTest cannot draw): the page asks for a drawing, no prediction yet.
    assert "Draw a digit on the canvas first" in texts(at)
    assert not [m for m in at.metric if m.label == "Prediction"]
    # Drawing needs a pointer: the page names the keyboard's alternatives, as the picker spells them.
    hint = next(c.value for c in at.caption if "keyboard" in c.value)
    others = [o for o in at.segmented_control(key="_w.draw_source").options if o != "Draw"]
    assert others == ["A test digit", "Upload a picture"] and all(f"**{o}**" in hint for o in others)

    at.segmented_control(key="_w.draw_source").set_value("A test digit").run()
    at.button(key="draw_random").click().run()
    assert 0 <= at.number_input(key="_w.draw_test_index").value < 1000
    at.number_input(key="_w.draw_test_index").set_value(3).run()
    assert not at.exception
    # pressing the open "look inside" view again leaves it open (alone, a segmented control unselects it)
    assert at.segmented_control(key="_w.draw_view").value == "Why this answer"
    at.segmented_control(key="_w.draw_view").set_value(None).run()
    assert at.segmented_control(key="_w.draw_view").value == "Why this answer" and not at.exception
    assert any("Grad-CAM" in c.value for c in at.caption)
    # the probability chart said in words beside it: the three most likely classes with their shares
    assert any(c.value.startswith("Each class's probability; the most likely: ") and c.value.count("%") == 3
               for c in at.caption)
    # the page owns its choices: a visit to another page keeps the test digit and its number
    at.switch_page("app_pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.segmented_control(key="_w.draw_source").value == "A test digit"
    assert at.number_input(key="_w.draw_test_index").value == 3
    at.selectbox(key="_w.draw_run_id").set_value(older.id).run()
    at.switch_page("app_pages/data.py").run()
    at.switch_page(PAGE).run()
    assert at.selectbox(key="_w.draw_run_id").value == older.id  # the model chosen to compare stays chosen
    at.selectbox(key="_w.draw_run_id").set_value(newer.id).run()
    from cnnkit import datasets

    ds = datasets.offline_sample()
    expected = predict.predictor_for(newer).predict(datasets.to_float(ds.x_test[3:4])[0])
    metric = next(m for m in at.metric if m.label == "Prediction")
    assert metric.value == expected.label
    assert next(m for m in at.metric if m.label == "Confidence").value == f"{expected.confidence:.1%}"
    assert at.get("plotly_chart"), "the probability bar chart"
    # Look inside, one view at a time. First, why this answer: Grad-CAM for the answer, then "why not 7?".
    assert at.segmented_control(key="_w.draw_view").value == "Why this answer"
    assert "Grad-CAM on conv2d_1" in texts(at)
    at.segmented_control(key="_w.draw_why_class").set_value("7").run()
    assert not at.exception
    assert "for **7**" in texts(at) or "speaks for **7**" in texts(at)
    # The class to explain is the page's own: a visit to another page keeps it.
    at.switch_page("app_pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.segmented_control(key="_w.draw_why_class").value == "7"
    assert "for **7**" in texts(at) or "speaks for **7**" in texts(at)
    # The convolution: the lessons' warm-up, then one number of the first feature map worked out by hand,
    # equal to the number the model computed.
    at.segmented_control(key="_w.draw_view").set_value("The convolution").run()
    assert not at.exception
    assert "2×1 + 5×2 + 8×3 = 36" in texts(at) and "[36, 33, 37, 45]" in texts(at)
    at.slider(key="_w.draw_conv_row").set_value(0).run()
    at.slider(key="_w.draw_conv_col").set_value(25).run()
    at.number_input(key="_w.draw_conv_channel").set_value(3).run()
    assert not at.exception
    import re

    done = next(s.value for s in at.success if "feature map holds" in s.value)
    shown, computed = re.search(r"= \*\*(-?[\d.]+)\*\*.*computed (-?[\d.]+)\)", done).groups()
    assert shown == computed and "(0, 25)" in done and "filter #3" in done
    assert texts(at).count("```") >= 6  # three grids: the window, the filter's weights, their products
    assert "sum of 36 products" in texts(at)  # the deeper layer's sentence: 3×3×4
    # Feature maps: a slider for the channels and one caption per conv layer.
    at.segmented_control(key="_w.draw_view").set_value("Feature maps").run()
    assert at.slider(key="_w.draw_channels").value == 6  # 8 by default, at most the widest layer's 6
    at.slider(key="_w.draw_channels").set_value(3).run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.segmented_control(key="_w.draw_view").value == "Feature maps"
    assert at.slider(key="_w.draw_channels").value == 3   # kept across the visit to another page
    assert "conv2d" in texts(at) and "4 filters 3×3" in texts(at) and "6 filters 3×3" in texts(at)
    assert ("Right" in texts(at)) or ("Wrong" in texts(at))

    # Another run can be chosen; the answer follows it.
    at.selectbox(key="_w.draw_run_id").set_value(older.id).run()
    assert not at.exception
    expected_old = predict.predictor_for(older).predict(datasets.to_float(ds.x_test[3:4])[0])
    assert next(m for m in at.metric if m.label == "Prediction").value == expected_old.label


def _cifar_upload(at) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_test=np.arange(20) % 10)
    data = buf.getvalue()
    at.session_state["upload"] = (hashlib.sha256(data).hexdigest()[:16], "tiny_cifar.npz", "cifar10")
    at.session_state["upload_bytes"] = data


def test_cifar_gets_a_test_image_picker_not_a_canvas(runs_dir):
    from streamlit.testing.v1 import AppTest

    run = make_run(runs_dir, dataset_name="cifar10", shape=(32, 32, 3), title="cifar tiny")
    from conftest import APP

    at = AppTest.from_file(APP, default_timeout=120)
    _cifar_upload(at)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    assert at.segmented_control(key="_w.draw_source").options == ["A test image", "Upload a picture"]
    assert at.selectbox(key="_w.draw_run_id").value == run.id
    metric = next(m for m in at.metric if m.label == "Prediction")
    assert metric.value in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    assert at.number_input(key="_w.draw_test_index").max == 19
    # The picture mode waits for an upload with a sentence, not an error.
    at.session_state["draw_source"] = "Upload a picture"
    at.run()
    assert not at.exception
    assert "Choose a picture" in texts(at)


def test_a_run_for_another_shape_is_explained(app_test, runs_dir):
    # A run saved for "mnist" but with CIFAR's input shape (a hand-made folder): a sentence, no traceback.
    make_run(runs_dir, dataset_name="mnist", shape=(32, 32, 3), title="odd")
    at = app_test(PAGE)
    assert not at.exception
    assert any("takes 32×32×3 images" in e.value for e in at.error)


@pytest.fixture(autouse=True)
def _no_leftover_jobs():
    yield
    from webapp import training_jobs

    for job in training_jobs.job_registry().jobs():
        job.stop()
        job.wait()
