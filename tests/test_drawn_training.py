"""A class-drawn collection end to end without a browser: drawings of shapes (tests/strokes.py) prepared as the
canvas is, stored, turned into a dataset split by contributor, trained on a Dask worker through the one Start
path (the dataset is sent whole: no worker can load it by name), and the run reads a newly drawn shape."""

from __future__ import annotations

import pytest

from cnnkit import class_drawings, drawing, identity, jobs, predict
from cnnkit.hyper import Hyper
from cnnkit.progress import JobState
from cnnkit.spec import LayerSpec, ModelSpec
from tests import strokes


@pytest.fixture(scope="module")
def client():
    c = jobs.connect(n_workers=1)
    c.wait_for_workers(1, timeout=120)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.mark.slow
def test_a_job_trains_on_the_class_drawings_and_the_run_reads_a_new_shape(client, tmp_path):
    store = class_drawings.DrawingStore(tmp_path / "d.sqlite3")
    c = store.open("shapes", "circle, square, triangle")
    places = iter(strokes.shape_places(4 * 3 * 8, seed=11))
    for _ in range(4):
        owner = identity.new_owner_id()
        for k, name in enumerate(c.class_names):
            for _ in range(8):
                size, left, top = next(places)
                img = strokes.render([strokes.shape_stroke(name, size, left, top)])
                store.add(c.id, owner, class_drawings.to_pixels(drawing.prepare_drawing(img).x), k)
    store.close(c.id)
    ds = class_drawings.to_dataset(store, c.id)
    assert "by contributor" in ds.notes[0]
    spec = class_drawings.spec_for_classes(ModelSpec((28, 28, 1), [
        LayerSpec.new("Conv2D", filters=8, kernel_size=3, activation="relu"),
        LayerSpec.new("MaxPooling2D", pool_size=2),
        LayerSpec.new("Flatten"),
        LayerSpec.new("Dense", units=10, activation="softmax"),
    ], name="tiny"), ds.num_classes)
    registry = jobs.JobRegistry(client, runs_root=tmp_path / "runs", worker_jobs=1000)
    try:
        job = registry.submit(spec, ds, Hyper(optimizer="adam", learning_rate=0.01, batch_size=16, epochs=8,
                                              validation_split=0.1, seed=1), owner="ann", title="shapes")
        snap = job.wait(300)
        assert snap.state is JobState.FINISHED, snap.message
        run = job.run
        assert run.dataset_name == ds.name
        assert run.metrics["test_accuracy"] >= 0.6   # other people's shapes, far above chance (1/3)
        predictor = predict.predictor_for(run, class_names=ds.class_names)
        new = drawing.prepare_drawing(strokes.render([strokes.shape_stroke("triangle", 150, 70, 50)]))
        answer = predictor.predict(new.x)
        assert answer.class_names == ("circle", "square", "triangle") and abs(answer.probabilities.sum() - 1) < 1e-4
        print("test accuracy on other people's shapes:", run.metrics.get("test_accuracy"), "new triangle read as",
              answer.class_names[answer.index])
    finally:
        registry.close()
