"""Issue #26, the parts below the pages: a NaN or Infinity in a model or settings file gets a sentence
(never a ValueError or OverflowError, on any page or the command line); nicknames that look like another
student's are refused; wrong lecturer keys are throttled for the whole server, not per session; the Data
page's statistics stay within a fixed memory budget however large the dataset.
"""

from __future__ import annotations

import io
import json
import math
import threading
import tracemalloc
from pathlib import Path

import hostile
import numpy as np
import pytest

from cnnkit import classroom, datasets, exploration, identity, student_state
from cnnkit.__main__ import main as cli
from cnnkit.errors import SpecError, TrainingError, UserError
from cnnkit.hyper import Hyper
from cnnkit.spec import LayerSpec, ModelSpec

APP = str(Path(__file__).resolve().parent.parent / "app.py")

NON_FINITE = [  # (setting, JSON literal, the layer and what the sentence says)
    ("units", "NaN", "Layer 5 (Dense): units must be a whole number, not NaN."),
    ("units", "Infinity", "Layer 5 (Dense): units must be a whole number, not Infinity."),
    ("kernel_size", "NaN", "Layer 1 (Conv2D): kernel_size must be a whole number, not NaN."),
    ("filters", "-Infinity", "Layer 1 (Conv2D): filters must be a whole number, not -Infinity."),
    ("pool_size", "Infinity", "Layer 2 (MaxPooling2D): pool_size must be a whole number, not Infinity."),
    ("rate", "NaN", "Layer 3 (Dropout): rate must be a number, not NaN."),
]


# --- 1. NaN and Infinity in a model file or a settings file ---------------------------------------------
@pytest.mark.parametrize(("setting", "literal", "said"), NON_FINITE)
def test_a_non_finite_setting_in_a_model_file_is_refused_with_its_layer_named(setting, literal, said):
    text = hostile.non_finite_spec_json(setting, literal)
    with pytest.raises(SpecError) as err:
        ModelSpec.from_json(text)
    assert str(err.value).startswith(said)
    with pytest.raises(SpecError, match=r"^" + said.replace("(", r"\(").replace(")", r"\)")):
        ModelSpec.from_dict(json.loads(text))


@pytest.mark.parametrize(("setting", "literal", "said"), NON_FINITE[:5])
def test_the_command_line_says_so_and_exits_2(tmp_path, capsys, setting, literal, said):
    f = tmp_path / "nan.json"
    f.write_text(hostile.non_finite_spec_json(setting, literal))
    assert cli(["summary", "--spec", str(f)]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_a_spec_holding_nan_sums_up_and_validates_without_raising():
    """A ModelSpec made in code (or set widget by widget) may hold NaN: the summary, the problems and the
    formulas the pages show say what is wrong under the layer, and never raise."""
    nan, inf = float("nan"), float("inf")
    spec = ModelSpec((28, 28, 1), [LayerSpec("Conv2D", {"filters": 8, "kernel_size": nan}),
                                   LayerSpec("MaxPooling2D", {"pool_size": -inf}),
                                   LayerSpec("Dropout", {"rate": nan}), LayerSpec("Flatten"),
                                   LayerSpec("Dense", {"units": inf, "activation": "softmax"})])
    summary = spec.summary()
    assert not summary.complete and summary.total_params == 0 and "?" in summary.to_text()
    by_layer = spec.problems_by_layer(10, refuse_cost=True)
    assert by_layer[0] == ["Kernel size must be a whole number, not NaN."]
    assert by_layer[1] == ["Pool size must be a whole number, not -Infinity."]
    assert by_layer[2] == ["Rate must be a number, not NaN."]
    assert by_layer[4] == ["Units must be a whole number, not Infinity."]
    assert spec.count_formula(4).startswith("Its input shape cannot be worked out")
    assert spec.cost_warnings() == []
    with pytest.raises(SpecError, match="Layer 1: Kernel size must be a whole number, not NaN"):
        spec.to_keras(10)


def test_a_kept_spec_holding_nan_is_refused_when_read_back(runs_dir):
    """A spec kept before this check is refused by ModelSpec.from_dict (a UserError the restore turns into
    'start from the preset'); a kept choice holding NaN or Infinity is dropped on reading the state, like a
    damaged one (the Training page's widgets cannot show an infinite number of epochs), the others kept."""
    owner = identity.new_owner_id()
    nan_spec = json.loads(hostile.non_finite_spec_json("units", "NaN"))
    with pytest.raises(SpecError, match=r"Layer 5 \(Dense\): units must be a whole number, not NaN"):
        ModelSpec.from_dict(nan_spec)
    assert issubclass(SpecError, UserError)
    student_state.save(owner, {"dataset": "fashion_mnist", "spec": nan_spec,
                               "hyper": {"learning_rate": math.nan, "epochs": math.inf}, "hyper_for": "x|mnist"})
    assert student_state.load(owner) == {"dataset": "fashion_mnist", "hyper_for": "x|mnist"}


def test_every_page_opens_for_a_student_whose_kept_spec_holds_nan(runs_dir):
    from streamlit.testing.v1 import AppTest

    owner = identity.new_owner_id()
    student_state.save(owner, {"dataset": "mnist", "spec": json.loads(hostile.non_finite_spec_json("units", "NaN")),
                               "hyper": {"learning_rate": math.nan, "epochs": math.inf}})
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["owner_id"] = owner
    at.run()
    assert not at.exception, at.exception
    for page in ("app_pages/architecture.py", "app_pages/training.py"):
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, at.exception)
    assert "parameters" in " ".join(c.value for c in at.sidebar.caption)


@pytest.mark.parametrize(("hyper", "said"), [
    (Hyper(learning_rate=math.inf), "The learning rate must be a number, not Infinity."),
    (Hyper(epochs=math.inf), "The epochs must be a whole number, not Infinity."),
    (Hyper(batch_size=math.nan), "The batch size must be a whole number, not NaN."),
    (Hyper(train_images=-math.inf), "The number of training images must be a whole number, not -Infinity."),
    (Hyper(epochs=10**400), "The epochs must be a whole number of a usual size, not one of 401 digits."),
])
def test_validate_says_what_is_wrong_with_a_non_finite_or_huge_setting(hyper, said):
    with pytest.raises(TrainingError) as err:
        hyper.validate(1000)
    assert str(err.value) == said


# --- 4. the Data page's statistics within a memory budget -------------------------------------------------
def _dataset(x: np.ndarray, y: np.ndarray, classes: int) -> datasets.Dataset:
    return datasets.Dataset(name="upload", title="hostile", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4],
                            class_names=tuple(str(i) for i in range(classes)), source="file",
                            source_text="a generated file")


def _peak_mb(fn, *args) -> float:
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_histogram_and_class_means_of_a_quarter_gigabyte_dataset_add_little_memory():
    """940 blank 512×512 images (246 MB, a 247 KB .npz within every size limit) took the web process past
    2 GB: bincount widened 8,192 images at a time to int64. numpy reports its allocations to tracemalloc."""
    x = np.zeros((940, 512, 512, 1), np.uint8)
    ds = _dataset(x, np.arange(940) % 10, 10)
    for stat in (exploration.pixel_histogram, exploration.mean_images, exploration.class_counts):
        assert _peak_mb(stat, ds) < 64, stat.__name__
    assert exploration.pixel_histogram(ds)["pixels"][0] == x.size


@pytest.mark.parametrize("chunk", [exploration.CHUNK_VALUES, 100, 7])
@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 3), (5, 3, 2)])
def test_chunked_statistics_equal_the_straightforward_ones(monkeypatch, chunk, shape):
    """Chunks smaller than one image, chunks across images, a class with no image, images out of class order
    and a dataset that is a strided view (not contiguous): the same numbers as plain numpy."""
    monkeypatch.setattr(exploration, "CHUNK_VALUES", chunk)
    rng = np.random.default_rng(sum(shape) + chunk)
    big = rng.integers(0, 256, (2 * 37, *shape), dtype=np.uint8)
    y = rng.permutation(np.arange(37) % 4)  # class 4 of 5 has no image
    for x in (big[:37].copy(), big[::2]):
        ds = _dataset(x, y, 5)
        hist = exploration.pixel_histogram(ds)
        assert hist["pixels"].tolist() == np.bincount(x.reshape(-1), minlength=256).tolist()
        means = exploration.mean_images(ds)
        assert means.shape == (5, *shape) and means.dtype == np.uint8 and not means[4].any()
        for c in range(4):
            expected = np.rint(x[y == c].astype(np.float64).mean(axis=0)).astype(np.uint8)
            assert np.array_equal(means[c], expected)


def test_a_zip_of_blank_pngs_decodes_into_its_arrays_without_copies(tmp_path):
    """900 blank 512×512 PNGs (a 400 KB zip) took the web process from 424 MB to 1,241 MB in the 2.7 GB cgroup
    (bench/bench_memory_ceiling.py): every picture decoded into a list, converted into another, stacked, then
    split into copies, four times the dataset. Now each picture goes straight to its row: the peak is the arrays."""
    blank = hostile.png(256, 256)
    f = hostile.image_zip(tmp_path / "blank.zip", {f"c{i % 4}/{i}.png": blank for i in range(120)})
    final_mb = 120 * 256 * 256 / 2**20
    datasets.load_file(f)   # the readers' imports (scikit-learn's split) are not the decoder's memory
    assert _peak_mb(datasets.load_file, f) < 1.3 * final_mb + 4


def test_a_zip_decoded_in_place_keeps_the_split_order_and_turns_to_colour_late(tmp_path):
    """The same images, labels and split as the lessons' train_test_split(random_state=13) on the stacked
    images; a colour picture after grey ones makes every image RGB (the grey ones read again)."""
    from PIL import Image
    from sklearn.model_selection import train_test_split

    def encoded(i: int, colour: bool) -> bytes:
        a = np.full((6, 5, 3), i * 7 % 256, np.uint8)
        if colour:
            a[..., 0] = 255
        buf = io.BytesIO()
        Image.fromarray(a if colour else a[..., 0]).save(buf, format="PNG")
        return buf.getvalue()

    for late_colour in (False, True):
        files = {f"k{i % 3}/{i:02d}.png": encoded(i, late_colour and i == 29) for i in range(30)}
        ds = datasets.load_file(hostile.image_zip(tmp_path / f"z{late_colour}.zip", files))
        names = sorted(files)
        pics = [np.asarray(Image.open(io.BytesIO(files[n])).convert("RGB" if late_colour else "L")) for n in names]
        x = np.stack(pics)
        x = x if late_colour else x[..., None]
        y = np.array([int(n[1]) for n in names])
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=6, stratify=y, random_state=13)
        assert ds.x_train.shape == x_tr.shape and ds.x_train.shape[-1] == (3 if late_colour else 1)
        assert np.array_equal(ds.x_train, x_tr) and np.array_equal(ds.x_test, x_te)
        assert np.array_equal(ds.y_train, y_tr) and np.array_equal(ds.y_test, y_te)


def test_a_worker_process_does_not_run_the_app():
    """Streamlit makes app.py the web process's __main__, and multiprocessing's spawn (Dask's nanny) runs the
    parent's main file as __mp_main__ in every worker it starts: each worker ran the whole app in bare mode
    (+130 MB, a job registry polling, a LocalCluster it tried to start three times from a daemonic process)."""
    import subprocess
    import sys

    code = ("import runpy, sys, threading; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
            "print(sorted(m for m in ('streamlit', 'webapp', 'cnnkit') if m in sys.modules), "
            "[t.name for t in threading.enumerate()])")
    out = subprocess.run([sys.executable, "-c", code, APP], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[] ['MainThread']"


# --- 2. nicknames that look like someone else's ------------------------------------------------------------
@pytest.fixture
def book(runs_dir) -> classroom.ClassBook:
    return classroom.ClassBook(runs_dir / ".class" / "class.json")


STUDENTS = [identity.new_owner_id() for _ in range(3)]


@pytest.mark.parametrize("posing", [
    "ѕtudent 2",            # Cyrillic ѕ
    "ѕtudеnt 2",            # Cyrillic ѕ and е
    "Student l",            # a small L for the 1... of student 1
    "ＳＴＵＤＥＮＴ ２",    # full width
    "student\u200b 2",      # a zero-width space inside
    "\u202estudent 2",      # a right-to-left override in front
    "Lecturer",
    "lеcturеr",             # Cyrillic е
])
def test_a_nickname_that_looks_like_student_n_is_refused(book, posing):
    with pytest.raises(classroom.ClassroomError, match="looks like|choose another"):
        book.set_nickname(STUDENTS[0], posing)


@pytest.mark.parametrize("posing", ["Аda L.", "ADA L.", "Ada  L.", "Ada I.", "Ada 1.", "Αda L.", "Ada L\u200d.",
                                    "\u202dAda L."])
def test_a_nickname_that_looks_like_a_taken_one_is_refused(book, posing):
    assert book.set_nickname(STUDENTS[0], "Ada L.") == "Ada L."
    with pytest.raises(classroom.ClassroomError, match="already goes by"):
        book.set_nickname(STUDENTS[1], posing)
    assert book.nickname(STUDENTS[1]) == ""


def test_a_nickname_is_stored_nfkc_without_invisible_characters(book):
    assert book.set_nickname(STUDENTS[0], "\u202eＧrace\u200b\tH.\x00 ") == "Grace H."
    assert book.set_nickname(STUDENTS[1], "Grace K.") == "Grace K."    # looks different: fine
    assert book.set_nickname(STUDENTS[2], "Mariam") == "Mariam"
    with pytest.raises(classroom.ClassroomError, match="looks just like"):
        book.set_nickname(STUDENTS[0], "Mariarn")                     # rn for m
    assert book.set_nickname(STUDENTS[2], "Мariam") == "Мariam"       # one's own name, retyped: still one's own


def test_look_alike_skeleton():
    same = [("ѕtudent 2", "student 2"), ("l0la", "LOLA"), ("Ivan", "ivan"), ("Ιvan", "lvan"), ("modern", "modem"),
            ("ＡＢＣ", "abc"), ("Βοb", "Bob")]
    for a, b in same:
        assert identity.look_alike_skeleton(a) == identity.look_alike_skeleton(b), (a, b)
    for a, b in [("Ada", "Ava"), ("student 2", "student 3"), ("Kim", "Kin")]:
        assert identity.look_alike_skeleton(a) != identity.look_alike_skeleton(b), (a, b)


# --- 3. wrong lecturer keys, throttled for the whole server ------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_sessions_guessing_at_once_are_refused_after_the_first_few(book, monkeypatch):
    """Each guess comes from its own session (own browser id, own thread), as ten tabs would: the count is the
    server's, not the session's."""
    clock = Clock()
    monkeypatch.setattr(identity, "LECTURER_KEY_THROTTLE", identity.KeyThrottle(clock=clock))
    results: list[classroom.KeyAttempt] = []
    done = threading.Lock()

    def session(i: int) -> None:
        attempt = classroom.book(book.path).try_lecturer_key(identity.new_owner_id(), f"guess {i}", "the key")
        with done:
            results.append(attempt)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not any(a.unlocked for a in results)
    compared = [a for a in results if a.wait_s == 0]
    refused = [a for a in results if a.wait_s > 0]
    assert len(compared) == 3 and len(refused) == 7
    assert all("Too many wrong lecturer keys" in a.sentence and "2 s" in a.sentence for a in refused)
    # The right key, during the wait, is not even compared; after it, it unlocks and clears the count.
    lecturer = identity.new_owner_id()
    assert not book.try_lecturer_key(lecturer, "the key", "the key").unlocked
    clock.now += 2.1
    assert book.try_lecturer_key(lecturer, "the key", "the key").unlocked
    assert book.is_lecturer(lecturer, "the key")


def test_the_wait_doubles_up_to_a_minute_and_is_forgotten(book):
    clock = Clock()
    throttle = identity.KeyThrottle(clock=clock)
    waits = []
    for _ in range(12):
        attempt = book.try_lecturer_key(identity.new_owner_id(), "wrong", "the key", throttle=throttle)
        assert not attempt.unlocked and attempt.wait_s == 0       # each compared, once its wait is over
        waits.append(throttle.wait_left())
        clock.now += throttle.wait_left()
    assert waits == [0, 0, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]
    wrong = book.try_lecturer_key(identity.new_owner_id(), "wrong", "the key", throttle=throttle)
    assert wrong.sentence.endswith("After several wrong keys the server checks the next one in 60 s.")
    clock.now += 601
    first = book.try_lecturer_key(identity.new_owner_id(), "wrong", "the key", throttle=throttle)
    assert first.sentence.startswith("That is not the lecturer key") and throttle.wait_left() == 0


def test_every_class_book_of_the_process_shares_one_throttle(runs_dir, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(identity, "LECTURER_KEY_THROTTLE", identity.KeyThrottle(clock=clock))
    books = [classroom.ClassBook(runs_dir / f"class{i}.json") for i in range(4)]
    answers = [b.try_lecturer_key(identity.new_owner_id(), "wrong", "the key") for b in books]
    assert [a.wait_s > 0 for a in answers] == [False, False, False, True]
