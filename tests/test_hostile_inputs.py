"""Hostile inputs: every one gets a sentence naming what is wrong and what to do, the app keeps its state,
and the memory cases stay under a stated bound of peak RSS (measured in a subprocess).

The files are generated here (tests/hostile.py): headers that claim huge sizes, not huge allocations.
Damaged caches live under a temporary KERAS_HOME; the real ~/.keras is never touched.
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import textwrap

import hostile
import numpy as np
import pytest

from cnnkit import datasets, drawing, limits, progress, runs, settings, spec, training
from cnnkit.__main__ import main as cli
from cnnkit.errors import DatasetError, DrawingError, RunError, SpecError, TrainingError
from cnnkit.hyper import Hyper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Peak RSS bounds for the memory cases: a Python with numpy, Pillow and cnnkit's data modules takes
# about 60–90 MB; before the guards these inputs took 0.5–58 GB.
RSS_BOUND_MB = 300


def peak_rss(body: str, *, env: dict | None = None) -> tuple[float, str]:
    """Run `body` in a fresh Python (address space capped at 4 GB so a failing guard cannot hurt the
    machine); return its peak RSS in MB and the sentence of the UserError it raised ('' if none)."""
    code = textwrap.dedent("""
        import json, resource, sys
        sys.path.insert(0, {root!r})
        from cnnkit.errors import UserError
        message = ""
        try:
        {body}
        except UserError as err:
            message = str(err)
        except MemoryError:
            message = "MemoryError"
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report pytest's own peak.
        hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
        print(json.dumps({{"rss_mb": hwm / 1024, "message": message}}))
    """).format(root=ROOT, body=textwrap.indent(textwrap.dedent(body), "    "))

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})}, preexec_fn=cap)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rss_mb"], result["message"]


# --- huge images, from the headers ----------------------------------------------------------------
@pytest.mark.parametrize("side", [5000, 20000])
def test_huge_npz_images_are_refused_from_the_header(tmp_path, side):
    f = hostile.claimed_npz(tmp_path / "huge.npz", (4, side, side))
    rss, msg = peak_rss(f"from cnnkit import datasets; datasets.load_file({str(f)!r})")
    assert f"{side}×{side}×1 images, a side of {side:,} pixels" in msg
    assert "CNNKIT_LIMIT_IMAGE_SIDE" in msg and "Resize the images" in msg
    assert rss < RSS_BOUND_MB, rss


def test_too_many_pixels_in_total_is_refused_from_the_header(tmp_path):
    f = hostile.claimed_npz(tmp_path / "many.npz", (2_000_000, 28, 28))
    rss, msg = peak_rss(f"from cnnkit import datasets; datasets.load_file({str(f)!r})")
    assert "2000000×28×28×1 values" in msg and "CNNKIT_LIMIT_DATASET_VALUES" in msg and "subset" in msg
    assert rss < RSS_BOUND_MB, rss


def test_zip_of_huge_pngs_is_refused_before_decoding(tmp_path):
    big = hostile.png(9000, 9000, header_only=True)
    f = hostile.image_zip(tmp_path / "big.zip", {f"{c}/{i}.png": big for c in "ab" for i in range(3)})
    rss, msg = peak_rss(f"from cnnkit import datasets; datasets.load_file({str(f)!r})")
    assert "is 9000×9000, a side of 9,000 pixels" in msg and "CNNKIT_LIMIT_IMAGE_SIDE" in msg
    assert rss < RSS_BOUND_MB, rss


def test_png_decompression_bomb_in_a_zip_is_refused(tmp_path):
    bomb = hostile.png(9000, 9000)  # 81 MB of pixels in about 80 KB
    assert len(bomb) < 200_000
    f = hostile.image_zip(tmp_path / "bomb.zip", {"a/1.png": bomb, "b/1.png": bomb, "a/2.png": bomb, "b/2.png": bomb})
    rss, msg = peak_rss(f"from cnnkit import datasets; datasets.load_file({str(f)!r})")
    assert "9000×9000" in msg and "CNNKIT_LIMIT_IMAGE_SIDE" in msg
    assert rss < RSS_BOUND_MB, rss


def test_zip_whose_pictures_add_up_to_too_many_pixels(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_LIMIT_DATASET_VALUES", "100000")
    head = hostile.png(300, 300, header_only=True)
    f = hostile.image_zip(tmp_path / "sum.zip", {f"{c}/{i}.png": head for c in "ab" for i in range(1)})
    with pytest.raises(DatasetError, match=r"holds 2 images with 180,000 values; the limit is 100,000"):
        datasets.load_file(f)


def test_a_huge_black_png_to_predict_is_refused_before_decoding(tmp_path):
    f = tmp_path / "black.png"
    f.write_bytes(hostile.png(13000, 13000))  # 169 million pixels in a few hundred KB
    assert f.stat().st_size < 400_000
    rss, msg = peak_rss(f"from cnnkit import drawing; drawing.read_image({str(f)!r})")
    assert "13000×13000" in msg and "CNNKIT_LIMIT_PICTURE_PIXELS" in msg and "Resize it" in msg
    assert "empty" not in msg
    assert rss < RSS_BOUND_MB, rss


def test_a_picture_too_large_for_pillow_gets_a_sentence(tmp_path):
    data = hostile.png(20000, 20000, header_only=True)
    with pytest.raises(DrawingError, match="too large to open"):
        drawing.read_image(data)


def test_a_picture_within_the_limit_is_still_read():
    arr = drawing.read_image(hostile.png(600, 400, value=255))
    assert arr.shape == (400, 600)


# --- labels ------------------------------------------------------------------------------------------
def _npz_with_labels(tmp_path, y_train, y_test=None, x=None):
    x = x if x is not None else np.zeros((len(y_train), 28, 28), np.uint8)
    y_test = y_train if y_test is None else y_test
    xt = np.zeros((len(y_test), 28, 28), np.uint8)
    return hostile.npz(tmp_path / "labels.npz", x_train=x, y_train=y_train, x_test=xt, y_test=y_test)


def test_labels_up_to_ten_million_are_refused_before_any_count(tmp_path):
    y = np.arange(60) % 10
    y[5] = 10_000_000
    f = _npz_with_labels(tmp_path, y)
    rss, msg = peak_rss(f"from cnnkit import datasets; datasets.load_file({str(f)!r})")
    assert "labels up to 10,000,000, which would make 10,000,001 classes" in msg
    assert "CNNKIT_LIMIT_CLASSES" in msg and "renumber" in msg
    assert rss < RSS_BOUND_MB, rss


def test_a_label_of_two_to_the_31_is_refused_by_the_cli_too(tmp_path, capsys):
    y = np.arange(60) % 10
    y[0] = 2**31
    f = _npz_with_labels(tmp_path, y)
    rss, msg = peak_rss(f"from cnnkit.__main__ import main; main(['train', '--dataset', {str(f)!r}, '--out', "
                        f"{str(tmp_path / 'out')!r}, '--quiet'])")
    assert cli(["summary", "--dataset", str(f)]) == 2
    assert "2,147,483,648" in capsys.readouterr().err
    assert rss < 1500, rss  # the CLI imports TensorFlow (~650 MB); before: 23 GB


def test_huge_float_labels_are_refused(tmp_path):
    y = (np.arange(60) % 10).astype(np.float64)
    y[3] = 1e300
    with pytest.raises(DatasetError, match=r"labels up to 1e\+300"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_nan_labels_are_refused(tmp_path):
    y = (np.arange(60) % 10).astype(np.float32)
    y[3] = np.nan
    with pytest.raises(DatasetError, match="y_train has labels that are NaN"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_decimal_labels_are_refused(tmp_path):
    y = (np.arange(60) % 10) + 0.5
    with pytest.raises(DatasetError, match="whole-number class labels .* decimals such as 0.5"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_negative_labels_are_refused_with_the_remap(tmp_path):
    y = (np.arange(60) % 10) - 1
    with pytest.raises(DatasetError, match=r"negative labels \(down to -1\).*return_inverse"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_one_based_labels_offer_the_remap(tmp_path):
    y = (np.arange(60) % 10) + 1
    with pytest.raises(DatasetError, match=r"labels from 1 to 10 but no training images of class 0.*return_inverse"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_one_hot_labels_are_read_as_class_numbers_and_said(tmp_path):
    y = np.arange(600) % 10
    onehot = np.eye(10, dtype=np.float32)[y]
    ds = datasets.load_file(_npz_with_labels(tmp_path, onehot), name="mnist")
    assert ds.num_classes == 10 and len(ds.y_train) == 600 and np.array_equal(ds.y_train, y)
    assert any("one-hot (600×10): read as class numbers 0–9" in n for n in ds.notes)


def test_two_column_labels_that_are_not_one_hot_are_refused(tmp_path):
    y = np.tile([[3, 4]], (60, 1))
    with pytest.raises(DatasetError, match="y_train has shape 60×2 but its rows are not one-hot"):
        datasets.load_file(_npz_with_labels(tmp_path, y))


def test_label_ten_among_digits_is_said_not_silently_an_eleventh_class(tmp_path):
    y = np.arange(600) % 10
    y[7] = 10
    ds = datasets.load_file(_npz_with_labels(tmp_path, y), name="mnist")
    assert ds.num_classes == 11 and ds.name.startswith("file:")
    words = " ".join(ds.notes)
    assert "labels run 0–10, that is 11 classes" in words and "not as MNIST digits" in words
    assert "Class 10 has fewer than 2 %" in words


def test_train_of_one_class_and_test_of_another_is_refused(tmp_path):
    f = _npz_with_labels(tmp_path, np.zeros(60, int), np.ones(20, int))
    with pytest.raises(DatasetError, match=r"only one class in its training images \(class 0\); the test set has "
                                           r"class 1"):
        datasets.load_file(f)


def test_a_class_only_in_the_test_set_is_refused(tmp_path):
    f = _npz_with_labels(tmp_path, np.arange(60) % 3, np.arange(20) % 4)
    with pytest.raises(DatasetError, match="class 3 appear only in the test labels"):
        datasets.load_file(f)


def test_a_class_missing_from_the_test_set_is_warned(tmp_path):
    ds = datasets.load_file(_npz_with_labels(tmp_path, np.arange(60) % 3, np.arange(20) % 2))
    assert any("test set has no images of class 2" in n for n in ds.notes)


# --- pixel values ---------------------------------------------------------------------------------------
def _npz_with_pixels(tmp_path, x, y=None):
    y = np.arange(len(x)) % 10 if y is None else y
    return hostile.npz(tmp_path / "px.npz", x_train=x, y_train=y, x_test=x, y_test=y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels_are_refused(tmp_path, bad):
    x = np.random.default_rng(0).random((20, 28, 28)).astype(np.float32)
    x[0, 0, :4] = bad
    with pytest.raises(DatasetError, match="x_train has 4 pixel values that are NaN or infinite"):
        datasets.load_file(_npz_with_pixels(tmp_path, x), name="mnist")


def test_float_zero_to_one_is_read_as_zero_to_one_and_said(tmp_path):
    x = np.linspace(0, 1, 20 * 28 * 28, dtype=np.float32).reshape(20, 28, 28)
    ds = datasets.load_file(_npz_with_pixels(tmp_path, x), name="mnist")
    assert ds.x_train.dtype == np.uint8 and ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert any("read as the range 0–1 (0 = black, 1 = white) and multiplied by 255" in n for n in ds.notes)


def test_float_zero_to_255_is_read_as_grey_levels_and_said(tmp_path):
    x = np.linspace(0, 255, 20 * 28 * 28).reshape(20, 28, 28)
    ds = datasets.load_file(_npz_with_pixels(tmp_path, x), name="mnist")
    assert ds.x_train.max() == 255 and ds.x_train[0, 0, 1] == 0
    assert any("float64 decimals from 0 to 255: read as the range 0–255" in n for n in ds.notes)


@pytest.mark.parametrize("dtype,top", [("float32", 300.0), ("uint16", 65535)])
def test_pixels_beyond_255_are_refused(tmp_path, dtype, top):
    x = np.zeros((20, 28, 28), dtype=dtype)
    x[1, 1, 1] = top
    with pytest.raises(DatasetError, match=f"pixel values from 0 to {top:g}; expected 0–255"):
        datasets.load_file(_npz_with_pixels(tmp_path, x))


def test_complex_pixels_are_refused_not_truncated(tmp_path):
    x = np.zeros((20, 28, 28), np.complex64) + 1j
    with pytest.raises(DatasetError, match=r"x_train holds complex numbers \(complex64\).*real part"):
        datasets.load_file(_npz_with_pixels(tmp_path, x))


def test_text_pixels_are_refused(tmp_path):
    x = np.full((20, 28, 28), "a")
    with pytest.raises(DatasetError, match="x_train is not numeric"):
        datasets.load_file(_npz_with_pixels(tmp_path, x))


def test_object_arrays_are_refused_from_the_header(tmp_path):
    with pytest.raises(DatasetError, match="Python objects"):
        datasets.load_file(_object_npz(tmp_path))


def _object_npz(tmp_path):
    f = tmp_path / "obj.npz"
    x = np.empty((20,), dtype=object)
    np.savez(f, x_train=x, y_train=np.arange(20), x_test=x, y_test=np.arange(20))
    return f


def test_a_truncated_array_is_refused(tmp_path):
    f = hostile.claimed_npz(tmp_path / "short.npz", (60, 28, 28), data=bytes(28 * 28 * 5))
    with pytest.raises(DatasetError, match=r"x_train is truncated \(5 of 60 rows\)"):
        datasets.load_file(f)


# --- broken archives -----------------------------------------------------------------------------------------
def test_zip_with_a_bad_crc_gets_a_sentence(tmp_path):
    f = hostile.zip_with_bad_crc(tmp_path / "crc.zip")
    with pytest.raises(DatasetError, match="1/2.png is not a readable image .*checksum is wrong"):
        datasets.load_file(f)


def test_png_with_a_bad_chunk_crc_gets_a_sentence(tmp_path):
    broken = hostile.png(8, 8, bad_crc=True)
    files = {f"{c}/{i}.png": hostile.small_png(i) for c in "ab" for i in range(2)}
    files["b/9.png"] = broken
    with pytest.raises(DatasetError, match="b/9.png is not a readable image"):
        datasets.load_file(hostile.image_zip(tmp_path / "png.zip", files))


# --- sources on the machine: a damaged one is reported and skipped ---------------------------------------------
@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home / "datasets"


@pytest.mark.parametrize("content", [b"PK\x03\x04 this is not a zip at all", b"garbage"])
def test_damaged_keras_cache_is_reported_and_the_next_source_serves(keras_home, content, capsys):
    (keras_home / "mnist.npz").write_bytes(content)
    ds = datasets.load("mnist")
    assert ds.source == "offline-sample" and len(ds.x_train) == 4000
    assert any("Keras's cache at" in n and "is damaged and was skipped" in n for n in ds.notes)
    assert datasets.offline_sample().notes == []  # the shared sample itself is untouched
    assert cli(["datasets"]) == 0
    out = capsys.readouterr().out
    mnist_line = next(line for line in out.splitlines() if line.startswith("mnist"))
    assert "offline sample" in mnist_line and "is damaged and was skipped" in mnist_line


def test_keras_cache_of_the_wrong_shape_is_skipped(keras_home):
    x, y = hostile.digits_like(30, side=32)
    hostile.npz(keras_home / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    ds = datasets.load("mnist")
    assert ds.source == "offline-sample"
    assert any("32×32×1 images" in n for n in ds.notes)
    assert {r["name"]: r["source"] for r in datasets.describe_sources()}["mnist"] == "offline-sample"


def test_keras_cache_with_huge_claimed_arrays_is_skipped(keras_home):
    hostile.claimed_npz(keras_home / "mnist.npz", (4, 20000, 20000))
    rss, msg = peak_rss("from cnnkit import datasets; ds = datasets.load('mnist'); print(ds.notes, file=sys.stderr)",
                        env={"KERAS_HOME": str(keras_home.parent), "CNNKIT_OFFLINE": "1"})
    assert msg == ""  # no error: the offline sample served
    assert rss < RSS_BOUND_MB + 150, rss  # the sample's CSV and scikit-learn's split


def _fashion_dir(root, truncate: str | None = None, dims=None):
    root.mkdir(parents=True, exist_ok=True)
    for name, shape in zip(datasets.readers.FASHION_FILES, [(30, 28, 28), (30,), (10, 28, 28), (10,)], strict=True):
        shape = dims if (dims and name == truncate) else shape
        head = bytes([0, 0, 8, len(shape)]) + b"".join(int(s).to_bytes(4, "big") for s in shape)
        body = bytes(30 * 28 * 28 if len(shape) == 3 else 30)[: int(np.prod(shape))]
        data = head + body
        raw = gzip.compress(data)
        if name == truncate and dims is None:
            raw = raw[: len(raw) // 2]
        (root / name).write_bytes(raw)
    return root


@pytest.mark.parametrize("damage", ["truncated", "claims huge images"])
def test_damaged_debian_fashion_files_are_reported_and_skipped(tmp_path, monkeypatch, keras_home, damage, capsys):
    dims = (60000, 30000, 30000) if damage != "truncated" else None
    folder = _fashion_dir(tmp_path / "fashion", truncate=datasets.readers.FASHION_FILES[0], dims=dims)
    monkeypatch.setenv("CNNKIT_DEBIAN_FASHION_DIR", str(folder))
    with pytest.raises(DatasetError, match="Fashion-MNIST cannot be loaded here: Debian's Fashion-MNIST files at "
                                           ".* is damaged and was skipped"):
        datasets.load("fashion_mnist")
    assert {r["name"]: r["source"] for r in datasets.describe_sources()}["fashion_mnist"] is None
    assert cli(["datasets"]) == 0
    assert "Debian's Fashion-MNIST files" in capsys.readouterr().out


# --- model files (JSON) ---------------------------------------------------------------------------------------------
def test_json_nested_ten_thousand_deep_is_refused():
    with pytest.raises(SpecError, match=r"nests its brackets 10,001 levels; the limit is 32"):
        spec.ModelSpec.from_json(hostile.nested_json(10_000))


def test_latin1_spec_is_refused_with_the_encoding_named():
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte \d+ is 0xe8; it may have been saved as Latin-1"):
        spec.ModelSpec.from_json(hostile.latin1_json())


def test_utf8_spec_with_a_byte_order_mark_is_read():
    data = b"\xef\xbb\xbf" + json.dumps(hostile.big_spec_dict()).encode()
    assert spec.ModelSpec.from_json(data).name == "huge"


def test_ten_thousand_layer_spec_is_refused_on_reading():
    with pytest.raises(SpecError, match=r"has 10,002 layers; the limit is 100 .*at most 60"):
        spec.ModelSpec.from_json(hostile.layers_json(10_002))


def test_a_spec_file_of_megabytes_is_refused(tmp_path, capsys):
    f = tmp_path / "big.json"
    f.write_text(json.dumps({**hostile.big_spec_dict(), "padding": "x" * 2_000_000}))
    assert cli(["summary", "--spec", str(f)]) == 2
    assert "This model file is 2,000," in capsys.readouterr().err


def test_spec_from_the_cli_in_latin1_exits_2(tmp_path, capsys):
    f = tmp_path / "latin.json"
    f.write_bytes(hostile.latin1_json())
    assert cli(["summary", "--spec", str(f)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


# --- cost limits: refused in class mode, warned otherwise -------------------------------------------------------------
def test_big_model_is_warned_on_ones_own_machine(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNKIT_CLASS_MODE", raising=False)
    s = spec.ModelSpec.from_dict(hostile.big_spec_dict())
    assert s.validate(10) == []
    assert any("12,983,150 parameters; the limit is 8,000,000" in w for w in s.cost_warnings())
    f = tmp_path / "big.json"
    f.write_text(json.dumps(hostile.big_spec_dict()))
    assert cli(["summary", "--spec", str(f)]) == 0
    assert "warning: The model has 12,983,150 parameters" in capsys.readouterr().err


def test_big_and_slow_models_are_refused_in_class_mode(monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    big = spec.ModelSpec.from_dict(hostile.big_spec_dict())
    refuse = settings.get("class_mode")   # the edges decide; the spec reads no environment
    assert any("CNNKIT_LIMIT_MODEL_PARAMS" in str(p) for p in big.validate(10, refuse_cost=refuse))
    slow = spec.ModelSpec.from_dict(hostile.heavy_flops_spec_dict())
    problems = " ".join(str(p) for p in slow.validate(10, refuse_cost=refuse))
    assert "One image costs 1,853 MFLOPs; the limit is 500" in problems and "pool earlier" in problems
    assert big.cost_warnings(refuse_cost=refuse) == []  # in class mode they are problems, not warnings


def test_epochs_times_images_is_refused_in_class_mode_and_warned_otherwise(monkeypatch, tiny_ds):
    from cnnkit import presets

    ds = tiny_ds(n_train=60_000 // 100)
    preset = presets.get("keras_convnet", ds.image_shape, ds.num_classes)
    hyper = preset.hyper.replace(epochs=200)
    monkeypatch.setenv("CNNKIT_LIMIT_EPOCH_IMAGES", "50000")
    monkeypatch.delenv("CNNKIT_CLASS_MODE", raising=False)
    notes = training.training_cost_warnings(preset.spec, hyper, len(ds.y_train))
    assert notes == ["200 epochs × 600 training images is 120,000 images; the limit is 50,000 "
                     "(CNNKIT_LIMIT_EPOCH_IMAGES). Train for fewer epochs, or on fewer images."]
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    with pytest.raises(TrainingError, match="200 epochs × 600 training images"):
        training.TrainingJob(preset.spec, ds, hyper, save=False)


def test_a_bad_limit_setting_is_a_sentence(monkeypatch):
    monkeypatch.setenv("CNNKIT_LIMIT_IMAGE_SIDE", "big")
    with pytest.raises(Exception, match="CNNKIT_LIMIT_IMAGE_SIDE must be a whole number of pixels, not 'big'"):
        limits.get("image_side")


def test_limits_can_be_lowered_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_LIMIT_IMAGE_SIDE", "16")
    x, y = hostile.digits_like()
    with pytest.raises(DatasetError, match=r"a side of 28 pixels; the limit is 16 \(CNNKIT_LIMIT_IMAGE_SIDE\)"):
        datasets.load_file(hostile.npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y))


# --- divergence -----------------------------------------------------------------------------------------------------
def test_divergence_rule():
    assert training.diverged([2.3, 1.2, 0.9, 2.2e11])
    assert training.diverged([2.3, 5000.0])
    assert not training.diverged([2.3, 1.2, 3.0, 45.0])  # bad, but not orders of magnitude
    assert not training.diverged([0.001, 2.0])  # grows 2000× but stays a normal loss
    assert not training.diverged([2.3])


def test_rmsprop_at_lr_10_is_stopped_as_diverging(tiny_ds, runs_dir):
    from cnnkit import presets

    ds = tiny_ds(n_train=640, n_test=64)
    preset = presets.get("keras_convnet", ds.image_shape, ds.num_classes)
    hyper = Hyper(optimizer="rmsprop", learning_rate=10.0, batch_size=32, epochs=3, seed=1)
    job = training.train(preset.spec, ds, hyper, runs_root=runs_dir)
    snap = job.snapshot()
    assert snap.state is progress.JobState.FAILED
    assert ("the loss grew from" in snap.message and "training was diverging" in snap.message) or \
        "the loss became NaN" in snap.message
    assert "learning rate 10 is too high" in snap.message
    assert list(runs_dir.iterdir()) == []  # nothing saved as if it had finished


# --- run folders ----------------------------------------------------------------------------------------------------
BAD_RUNS = {
    "created-yesterday": {"run_json": {"id": "a", "title": "t", "dataset": "mnist", "created": "yesterday"}},
    "run-json-is-a-list": {"run_json": "[1, 2, 3]"},
    "history-of-words": {"history": {"loss": ["high", "low"]}},
    "spec-not-a-model": {"spec": {"input_shape": "big", "layers": 3}},
    "created-in-year-3000000": {"run_json": {"id": "b", "title": "", "dataset": "mnist", "created": 1e14}},
}


@pytest.mark.parametrize("name", list(BAD_RUNS))
def test_a_damaged_run_is_listed_as_damaged_and_never_breaks_a_listing(runs_dir, name, capsys):
    good = hostile.write_run(runs_dir, "good")
    bad = hostile.write_run(runs_dir, name, **BAD_RUNS[name])
    listed = runs.list_runs(runs_dir)
    assert [r.path for r in listed] == [good]
    damaged = dict(runs.damaged_runs(runs_dir))
    assert f"The run at {bad} is damaged" in damaged[bad] and "Train it again or delete it" in damaged[bad]
    with pytest.raises(RunError, match="is damaged"):
        runs.load_run(bad)
    assert cli(["evaluate", "--run", str(bad)]) == 2
    assert "is damaged" in capsys.readouterr().err


def test_a_run_json_of_megabytes_is_damaged(runs_dir):
    bad = hostile.write_run(runs_dir, "huge", history={"loss": [1.0] * 2_000_000})
    with pytest.raises(RunError, match="history.json is 1[0-9,]+ bytes; the limit is 5,000,000"):
        runs.load_run(bad)


@pytest.mark.parametrize("shape,classes", [((32, 32, 3), 10), ((28, 28, 1), 5)])
def test_predict_refuses_a_model_that_does_not_fit_its_runs_dataset(runs_dir, tmp_path, shape, classes, capsys):
    import keras

    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(),
                              keras.layers.Dense(classes, activation="softmax")])
    d = hostile.write_run(runs_dir, "mixed")
    model.save(d / "model.keras")
    img = tmp_path / "seven.png"
    img.write_bytes(hostile.png(28, 28, value=255))
    assert cli(["predict", "--run", str(d), str(img)]) == 2
    err = capsys.readouterr().err
    want = f"takes {shape[0]}×{shape[1]}×{shape[2]} images and gives {classes} class scores, but the run's dataset " \
           "MNIST digits has 28×28×1 images and 10 classes"
    assert want in err and "do not belong together" in err


# --- the pages (AppTest): the sentence, and the state kept ----------------------------------------------------------
@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    y = np.arange(60) % 10
    y_big = y.copy()
    y_big[0] = 10_000_000
    x = np.full((60, 28, 28), np.nan, np.float32)
    files = {
        "huge.npz": (hostile.claimed_npz(d / "huge.npz", (4, 5000, 5000)), "a side of 5,000 pixels"),
        "labels.npz": (_npz_plain(d / "labels.npz", y_big), "10,000,001 classes"),
        "nan.npz": (hostile.npz(d / "nan.npz", x_train=x, y_train=y, x_test=x, y_test=y), "NaN or infinite"),
        "bomb.zip": (hostile.image_zip(d / "bomb.zip", {"a/1.png": hostile.png(9000, 9000),
                                                        "b/1.png": hostile.png(9000, 9000)}), "9000×9000"),
        "crc.zip": (hostile.zip_with_bad_crc(d / "crc.zip"), "checksum is wrong"),
    }
    return {k: (v[0].read_bytes(), v[1]) for k, v in files.items()}


def _npz_plain(path, y):
    x = np.zeros((len(y), 28, 28), np.uint8)
    return hostile.npz(path, x_train=x, y_train=y, x_test=x, y_test=y)


@pytest.fixture(scope="module")
def data_page(tmp_path_factory):
    """One Data page session that receives the hostile uploads one after another."""
    from streamlit.testing.v1 import AppTest

    runs_root = tmp_path_factory.mktemp("runs")
    old = os.environ.get("CNNKIT_RUNS_DIR")
    os.environ["CNNKIT_RUNS_DIR"] = str(runs_root)
    at = AppTest.from_file(os.path.join(ROOT, "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/data.py")
    at.run()
    yield at
    if old is None:
        os.environ.pop("CNNKIT_RUNS_DIR", None)
    else:
        os.environ["CNNKIT_RUNS_DIR"] = old


@pytest.mark.parametrize("fname", ["huge.npz", "labels.npz", "nan.npz", "bomb.zip", "crc.zip"])
def test_data_page_refuses_a_hostile_upload_and_keeps_the_dataset(data_page, hostile_files, fname):
    at = data_page
    data, words = hostile_files[fname]
    at.get("file_uploader")[0].set_value((fname, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert [m.value for m in at.metric] == ["4,000", "1,000", "28 × 28 × 1", "10"]  # the dataset it had
    assert at.session_state.dataset_name == "mnist" and not at.session_state.upload
    at.run()  # the next rerun: the sentence was shown once, the dataset is still the one it had
    assert not at.exception and at.metric[0].value == "4,000"
    assert any("cnnkit-grid" in h.proto.body for h in at.get("html"))  # the sample grid still draws


def test_data_page_says_how_a_float_upload_was_read(data_page, tmp_path):
    at = data_page
    x = np.random.default_rng(1).random((50, 28, 28)).astype(np.float32)
    y = np.arange(50) % 10
    data = hostile.npz(tmp_path / "floats.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20]).read_bytes()
    at.get("file_uploader")[0].set_value(("floats.npz", data, "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "50"
    assert any("read as the range 0–1" in w.value for w in at.warning)


def test_data_page_survives_a_damaged_keras_cache(app_test, keras_home):
    from webapp import dataset_cache

    (keras_home / "mnist.npz").write_bytes(b"PK\x03\x04 broken")
    dataset_cache.catalogue_dataset.clear()
    try:
        at = app_test("app_pages/data.py")
        assert not at.exception, at.exception
        assert at.metric[0].value == "4,000"
        assert any("is damaged and was skipped" in w.value for w in at.warning)
    finally:
        dataset_cache.catalogue_dataset.clear()


def test_architecture_page_refuses_hostile_model_files_and_keeps_the_model(app_test):
    at = app_test("app_pages/architecture.py")
    layers_before = len(at.session_state.spec["layers"])
    for fname, data, words in [("deep.json", hostile.nested_json(10_000).encode(), "10,001 levels"),
                               ("tall.json", hostile.layers_json(10_002).encode(), "10,002 layers"),
                               ("latin.json", hostile.latin1_json(), "not UTF-8")]:
        at.file_uploader(key="arch_upload").set_value((fname, data, "application/json")).run()
        assert not at.exception, at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
        assert len(at.session_state.spec["layers"]) == layers_before


@pytest.mark.parametrize("class_mode", [False, True])
def test_architecture_page_warns_or_refuses_a_costly_model(app_test, monkeypatch, class_mode):
    if class_mode:
        monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    at = app_test("app_pages/architecture.py")
    at.file_uploader(key="arch_upload").set_value(
        ("slow.json", json.dumps(hostile.heavy_flops_spec_dict()).encode(), "application/json")).run()
    assert not at.exception, at.exception
    assert len(at.session_state.spec["layers"]) == 5
    shown = at.error if class_mode else at.warning
    assert any("One image costs 1,853 MFLOPs" in m.value for m in shown), [m.value for m in shown]


@pytest.mark.parametrize("page", ["app_pages/evaluation.py", "app_pages/draw.py"])
def test_evaluation_and_draw_pages_list_damaged_runs_and_keep_working(app_test, runs_dir, page):
    for name in ("created-yesterday", "run-json-is-a-list"):
        hostile.write_run(runs_dir, name, **BAD_RUNS[name])
    at = app_test(page)
    assert not at.exception, at.exception
    assert any("2 run folders could not be read and are not listed" in w.value for w in at.warning)
