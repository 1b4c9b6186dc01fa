"""AppTest: the app shell, the home page and the data page, driven as a student would."""

import io
import zipfile

import numpy as np
import pytest


@pytest.fixture
def app(app_test):
    at = app_test()
    assert not at.exception
    return at


def _data_page(at):
    at.switch_page("app_pages/data.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_home_page_lists_the_stages(app):
    text = " ".join(m.value for m in app.markdown)
    assert "four stages" in text
    assert any("offline sample" in i.value for i in app.info)
    # the sidebar says which dataset and where it came from
    side = " ".join(m.value for m in app.sidebar.markdown) + " ".join(c.value for c in app.sidebar.caption)
    assert "MNIST digits" in side and "offline sample" in side


def test_data_page_renders_samples_counts_and_preprocessing(app):
    at = _data_page(app)
    assert [m.value for m in at.metric] == ["4,000", "1,000", "28 × 28 × 1", "10"]
    # One line above the images, not banners (issue 24): the first screen shows the images.
    assert any("offline sample" in c.value for c in at.caption)
    folded = [e for e in at.expander if e.label.startswith("How this dataset was read")]
    assert len(at.warning) == sum(len(e.warning) for e in folded)   # any note sits in the folded notes only
    views = at.button_group(key="_w.data.view")
    # only the chosen view renders: the sample grid (one HTML fragment of 20 small images), no chart
    grids = [h.proto.body for h in at.get("html") if "cnnkit-grid" in h.proto.body]
    assert views.value == "Samples" and len(grids) == 1 and not at.get("plotly_chart")
    assert grids[0].count("<img") == 20 and "#0: label" in grids[0]
    views.set_value("Class balance").run()
    assert at.dataframe[0].value["train"].sum() == 4000  # class counts
    at.button_group(key="_w.data.view").set_value("Mean image per class").run()
    at.button_group(key="_w.data.view").set_value("Pixel values").run()
    assert not at.exception and "are exactly 0" in " ".join(c.value for c in at.caption)
    at.button_group(key="_w.data.view").set_value("Preprocessing for a CNN").run()
    codes = " ".join(c.value for c in at.code)
    assert "np.expand_dims" in codes and "(28, 28, 1)" in codes
    assert at.dataframe[0].value["validation"].sum() == 800  # 20 % held out


def test_switch_to_fashion_and_back(app):
    at = _data_page(app)
    at.selectbox(key="_w.data.dataset").set_value("fashion_mnist").run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "60,000"
    assert at.session_state.dataset_name == "fashion_mnist"
    at.selectbox(key="_w.data.dataset").set_value("mnist").run()
    assert at.metric[0].value == "4,000"


def test_cifar_offline_gives_a_sentence_and_keeps_the_dataset(app):
    at = _data_page(app)
    at.selectbox(key="_w.data.dataset").set_value("cifar10").run()
    assert not at.exception
    assert "CIFAR-10 cannot be loaded here" in at.error[0].value and "internet" in at.error[0].value
    assert at.session_state.dataset_name == "mnist"
    assert at.selectbox(key="_w.data.dataset").value == "mnist"
    assert at.metric[0].value == "4,000"


def test_sample_controls(app):
    at = _data_page(app)
    at.selectbox(key="_w.data.sample_class").set_value("7").run()
    at.slider(key="_w.data.sample_count").set_value(30).run()
    at.toggle(key="_w.data.sample_shuffle").set_value(True).run()
    assert not at.exception
    at.button_group(key="_w.data.view").set_value("Preprocessing for a CNN").run()
    at.number_input(key="_w.data.prep_index").set_value(42).run()
    assert not at.exception


def test_uploaded_npz_is_used_and_bad_upload_keeps_state(app, tmp_path):
    """Uploads go through webapp.student.use_upload, the same call the page makes for st.file_uploader."""
    from webapp import dataset_cache

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_train=np.arange(50) % 10,
             x_test=rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), y_test=np.arange(20) % 10)
    ds = dataset_cache.uploaded_dataset("d1", "mnist.npz", "mnist", buf.getvalue())
    assert ds.source == "file" and len(ds.x_train) == 50
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("../evil.png", b"x")
    from cnnkit.errors import DatasetError

    with pytest.raises(DatasetError, match="unsafe path"):
        dataset_cache.uploaded_dataset("d2", "evil.zip", "mnist", zbuf.getvalue())


def _two_class_zip(seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("circles", "squares"):
            for i in range(6):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(png, format="PNG")
                zf.writestr(f"{cls}/{i}.png", png.getvalue())
    return buf.getvalue()


def _reload(owner: str, seen: list | None = None):
    """A reload of the same browser: a new session that carries the student's identity. The toasts of its first
    page go into `seen`."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
    at.session_state["owner_id"] = owner
    at.run()
    if seen is not None:
        seen.extend(t.value for t in at.toast)
    return _data_page(at)


def test_an_uploaded_dataset_comes_back_after_a_reload(app):
    from cnnkit import student_state

    at = _data_page(app)
    owner = at.session_state["owner_id"]
    data = _two_class_zip()
    at.file_uploader(key="data.upload0").set_value(("shapes.zip", data, "application/zip")).run()
    assert not at.exception and at.metric[3].value == "2"
    shown = [m.value for m in at.metric]
    kept = list(student_state._upload_dir(owner).iterdir())
    assert [p.read_bytes() for p in kept] == [data]  # the bytes, once, named by their hash

    at = _reload(owner)
    assert [m.value for m in at.metric] == shown  # the upload, read again
    assert at.selectbox(key="_w.data.dataset").value == "upload"
    assert "shapes" in " ".join(m.value for m in at.sidebar.markdown)
    # The same file again is not written twice; another file replaces it (one kept file per owner).
    at.file_uploader(key="data.upload0").set_value(("shapes.zip", data, "application/zip")).run()
    other = _two_class_zip(seed=1)
    at.file_uploader(key="data.upload0").set_value(("other.zip", other, "application/zip")).run()
    assert [p.read_bytes() for p in student_state._upload_dir(owner).iterdir()] == [other]

    # Back to MNIST: the kept file goes, and a reload stays on MNIST.
    at.selectbox(key="_w.data.dataset").set_value("mnist").run()
    assert not student_state._upload_dir(owner).exists()
    at = _reload(owner)
    assert at.metric[0].value == "4,000" and at.selectbox(key="_w.data.dataset").value == "mnist"


def test_a_damaged_kept_upload_falls_back_to_the_catalogue(app):
    from cnnkit import student_state

    at = _data_page(app)
    owner = at.session_state["owner_id"]
    at.file_uploader(key="data.upload0").set_value(("shapes.zip", _two_class_zip(), "application/zip")).run()
    (kept,) = student_state._upload_dir(owner).iterdir()
    kept.write_bytes(kept.read_bytes()[:-10] + b"0123456789")  # no longer the bytes it was named after
    told = []
    at = _reload(owner, seen=told)
    assert not at.exception and not at.error
    assert at.metric[0].value == "4,000"
    assert "upload" not in student_state.load(owner)
    # The student is told, on the reload's first page, why their dataset changed and what to do.
    assert any("shapes.zip is no longer kept on the server" in t and "Upload the file again" in t for t in told)
