"""Command line: `python -m cnnkit COMMAND` — the same code paths as the app.

Each command is one `add_*` function that registers its sub-parser and
handler. User errors print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from cnnkit.errors import UserError


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --- datasets -----------------------------------------------------------------
def add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list every dataset, its shape and which source would serve it now")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_datasets)


def cmd_datasets(args) -> int:
    from cnnkit import datasets
    from cnnkit.spec import format_shape

    rows = datasets.describe_sources()
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'dataset':<15}{'shape':<12}{'classes':<9}source now")
    for r in rows:
        shape = format_shape(r["image_shape"])
        print(f"{r['name']:<15}{shape:<12}{r['num_classes']:<9}{r['source_text']}")
    return 0


# --- evaluate: a run (or model file) on a dataset's test images -------------------
def _model_source_args(p) -> None:
    """--run RUN, or --model FILE [--weights FILE]: a saved run or a model file a student brings."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="the run folder (as written by `train` or the app)")
    src.add_argument("--model", metavar="FILE",
                     help="a model file: .keras, a Keras 2 HDF5 model (.h5, .hdf5, .h5py), or a Keras 2 "
                          "architecture .json given with --weights")
    p.add_argument("--weights", metavar="FILE", help="the HDF5 weights (model.save_weights) of a --model .json")


def _model_file(args, ds):
    """The ModelFile --model (and --weights) name, checked against the dataset `ds`."""
    from cnnkit import evaluation, model_files

    if args.weights and not args.model:
        raise UserError("--weights goes with --model (a Keras 2 architecture .json).")
    found = model_files.read_model_path(args.model, args.weights)
    evaluation.check_model_fits(found.model, ds)
    return found


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy, loss and the per-class report of a saved run or model file")
    _model_source_args(p)
    p.add_argument("--dataset", help="a catalogue name or an .npz/.zip file (default: the run's own dataset; "
                                     "needed with --model)")
    p.add_argument("--batch-size", type=int, default=500, help="images per batch (default 500)")
    p.add_argument("--json", action="store_true", help="print JSON: metrics, report and confusion matrix")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from cnnkit import evaluation, runs

    if args.model:
        if not args.dataset:
            raise UserError("Say which dataset to test the model on: --dataset mnist (or fashion_mnist, cifar10, "
                            "or an .npz/.zip file).")
        ds = _train_dataset(args.dataset)
        found = _model_file(args, ds)
        ev = evaluation.evaluate(found.model, ds, batch_size=args.batch_size)
        if args.json:
            _print_json({"model": args.model, "format": found.format, "read": found.sentence,
                         **evaluation.to_json_dict(ev, dataset=ds)})
        else:
            print(f"model:     {args.model}: {found.sentence}")
            print(evaluation.report_text(ev, dataset=ds))
        return 0
    run = runs.load_run(args.run)
    named = _named_file(args.dataset or "")
    if named is not None:
        from cnnkit import datasets

        ds = datasets.load_file(named[1], name=named[0])
    else:
        ds = evaluation.dataset_for_run(run, args.dataset)
    ev = evaluation.evaluate(run, ds, batch_size=args.batch_size)
    if args.json:
        _print_json(evaluation.to_json_dict(ev, run=run, dataset=ds))
    else:
        print(evaluation.report_text(ev, run=run, dataset=ds))
    return 0


# --- train: a preset or a spec file, saved as a run --------------------------------
def add_train(sub) -> None:
    p = sub.add_parser("train",
                       help="train a preset or a spec file on a dataset and save the run (same TrainingJob as the app)",
                       description="Without --preset or --spec it trains the lecture preset with its suggested "
                                   "settings; --epochs/--batch-size/--optimizer/--lr override them.")
    p.add_argument("--dataset", required=True,
                   help="a catalogue name (mnist, fashion_mnist, cifar10), an .npz/.zip file, or NAME=FILE for a "
                        "file that holds that catalogue dataset (e.g. mnist=mnist_full.npz). A file of 28×28 grey "
                        "images in 10 classes named 0–9 is taken for digits and drawn like MNIST.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a preset name (default: the lecture preset)")
    src.add_argument("--spec", help="a model spec JSON file (as exported by the architecture page)")
    p.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the preset's)")
    p.add_argument("--optimizer", help="adam, sgd, rmsprop or adadelta (default: the preset's)")
    p.add_argument("--lr", type=float, help="learning rate (default: the preset's, or the optimizer's usual one)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"],
                   help="constant, or cosine decay to zero over the planned batches (default: the preset's)")
    p.add_argument("--validation-split", type=float, help="share of training images held back (default 0.1)")
    p.add_argument("--one-hot", action="store_true", help="one-hot labels with categorical cross-entropy")
    p.add_argument("--augment", action="store_true", help="small random shifts and rotations while training")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without validation improvement, keep the best weights")
    p.add_argument("--seed", type=int, help="random seed (default 42)")
    p.add_argument("--train-images", type=int, metavar="N",
                   help="train on a seeded, class-balanced subset of N training images (default: all)")
    p.add_argument("--title", default="", help="a title for the run (default: the model's name)")
    p.add_argument("--out", required=True, help="folder to write the run into (the runs folder, e.g. runs/shared)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _named_file(text: str):
    """`NAME=FILE` (a catalogue name, then a file that stands in for it) as (name, path), else None."""
    from cnnkit import datasets

    name, sep, path = text.partition("=")
    if sep and name in datasets.CATALOGUE and path:
        return name, path
    return None


def _train_dataset(name_or_file: str):
    from pathlib import Path

    from cnnkit import datasets

    named = _named_file(name_or_file)
    if named is not None:  # the user says what the file holds: e.g. mnist=mnist_full.npz
        return datasets.load_file(named[1], name=named[0])
    p = Path(name_or_file)
    if p.suffix.lower() in (".npz", ".zip") or p.is_file():
        return datasets.load_file(p)
    return datasets.load(name_or_file)


def _read_spec_file(path: str):
    """A ModelSpec from a JSON file saved on the architecture page; a sentence if it cannot be read."""
    import os

    from cnnkit.errors import SpecError
    from cnnkit.spec import ModelSpec, check_file_size

    try:
        check_file_size(os.path.getsize(path))
        with open(path, "rb") as f:  # bytes: from_json checks the encoding and says what is wrong
            return ModelSpec.from_json(f.read())
    except OSError as err:
        raise SpecError(f"Cannot read the spec file {path} ({err.strerror}).") from None


def hyper_from_args(args, start):
    """The Hyper the `train` flags describe: `start` (the preset's settings) with each given flag on top."""
    from cnnkit.hyper import OPTIMIZERS, optimizer_key

    lr = args.lr
    if args.optimizer and lr is None:
        lr = OPTIMIZERS[optimizer_key(args.optimizer)].default_lr   # a new optimizer brings its usual rate
    return start.replace(
        optimizer=args.optimizer, learning_rate=lr, lr_schedule=args.lr_schedule, epochs=args.epochs,
        batch_size=args.batch_size, validation_split=args.validation_split, seed=args.seed,
        train_images=args.train_images, labels="one_hot" if args.one_hot else "integer",
        augment=True if args.augment else None,
        early_stopping=True if args.early_stopping is not None else None, patience=args.early_stopping)


def cmd_train(args) -> int:
    from cnnkit import presets, training
    from cnnkit.jobs import start
    from cnnkit.progress import JobState
    from cnnkit.terminal_progress import TerminalProgress

    ds = _train_dataset(args.dataset)
    if args.spec:
        spec = _read_spec_file(args.spec)
        hyper = presets.suggested_hyper(spec, len(ds.y_train))
    else:
        preset = presets.get(args.preset or presets.DEFAULT, ds.image_shape, ds.num_classes)
        spec, hyper = preset.spec, preset.hyper_for(len(ds.y_train))
    hyper = hyper_from_args(args, hyper)
    for warning in training.training_cost_warnings(spec, hyper, len(ds.y_train)):  # refused in class mode
        print(f"warning: {warning}", file=sys.stderr)
    bar = None if args.quiet else TerminalProgress(sys.stderr)
    # The one Start path: in class mode the class's limits apply here as in the app. What they change is said
    # before the job trains (the same plan that start_training applies).
    for note in start.plan_start(hyper, len(ds.y_train)).notes:
        print(f"note: {note}", file=sys.stderr)
    job = start.start_training(spec, ds, hyper, title=args.title or spec.name, runs_root=args.out,
                               on_progress=bar).job
    snap = job.snapshot()
    if bar:
        bar.close(snap)
    if snap.state is JobState.FAILED:
        print(f"error: {snap.message}", file=sys.stderr)
        return 1
    _print_json({"run": snap.run_path, "state": snap.state.value, **snap.metrics})
    return 0


# --- summary / presets / export: a spec without TensorFlow, and its Keras script -----
def _spec_args(p) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a preset name (see `presets`; default: the lecture preset)")
    src.add_argument("--spec", help="a model spec JSON file (as saved by the architecture page)")
    p.add_argument("--dataset", default="mnist",
                   help="a catalogue name (mnist, fashion_mnist, cifar10) or an .npz/.zip file: sets the input "
                        "shape and the number of classes (default mnist)")


def _image_shape_and_classes(name_or_file: str) -> tuple[tuple[int, int, int], int]:
    from pathlib import Path

    from cnnkit import datasets

    info = datasets.CATALOGUE.get(name_or_file)
    if info is not None:  # no need to load the images for a catalogue entry
        return tuple(info.image_shape), info.num_classes
    named = _named_file(name_or_file)
    if named is not None:
        ds = datasets.load_file(named[1], name=named[0])
        return ds.image_shape, ds.num_classes
    if not Path(name_or_file).is_file():
        raise UserError(f"'{name_or_file}' is neither a dataset name ({', '.join(datasets.CATALOGUE)}) nor a file.")
    ds = datasets.load_file(name_or_file)
    return ds.image_shape, ds.num_classes


def _load_spec(args):
    """(spec, preset or None, num_classes) from --spec or --preset and --dataset."""
    from cnnkit import presets

    shape, classes = _image_shape_and_classes(args.dataset)
    if args.spec:
        spec = _read_spec_file(args.spec)
        return spec.with_input_shape(shape), None, classes
    preset = presets.get(args.preset or presets.DEFAULT, shape, classes)
    return preset.spec, preset, classes


def add_summary(sub) -> None:
    p = sub.add_parser("summary", help="layer-by-layer output shapes and parameters of a preset or spec file, "
                                       "as Keras's model.summary() would show them (no TensorFlow needed)")
    _spec_args(p)
    p.add_argument("--json", action="store_true", help="print JSON: rows, totals and problems")
    p.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    from cnnkit import settings
    from cnnkit.spec import format_shape

    spec, _, classes = _load_spec(args)
    summary = spec.summary()
    class_mode = settings.get("class_mode")
    problems = spec.validate(classes, refuse_cost=class_mode)
    warnings = spec.cost_warnings(refuse_cost=class_mode)
    if args.json:
        _print_json({**summary.to_dict(), "name": spec.name,
                     "problems": [{"layer": None if p.layer_index is None else p.layer_index + 1,
                                   "message": p.message} for p in problems], "warnings": warnings})
    else:
        print(f'Model: "{spec.name or "my model"}"  input {format_shape(spec.input_shape)}')
        print(summary.to_text())
        for p in problems:
            print(f"problem: {p}")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 1 if problems else 0


def add_presets(sub) -> None:
    p = sub.add_parser("presets", help="list the presets: the lessons' models and our fast one")
    p.add_argument("--dataset", default="mnist", help="count parameters for this dataset's images (default mnist)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_presets)


def cmd_presets(args) -> int:
    from cnnkit import presets

    shape, classes = _image_shape_and_classes(args.dataset)
    rows = []
    for name in presets.names():
        p = presets.get(name, shape, classes)
        s = p.spec.summary()
        rows.append({"name": name, "title": p.title, "params": s.total_params, "flops": s.flops,
                     "layers": len(p.spec.layers), **p.hyper.to_dict(), "description": p.description})
    if args.json:
        _print_json(rows)
        return 0
    print(f"{'preset':<24}{'params':>11}{'MFLOPs':>9}  {'training':<34}title")
    for r in rows:
        train = f"{r['optimizer']} lr {r['learning_rate']:g}, batch {r['batch_size']}, {r['epochs']} ep"
        print(f"{r['name']:<24}{r['params']:>11,}{r['flops'] / 1e6:>9.1f}  {train:<34}{r['title']}")
    print(f"\nThe default is '{presets.DEFAULT}' (99 % on MNIST in two epochs); '{presets.FAST}' is our earlier fast "
          "model. Show one with: python -m cnnkit summary --preset NAME")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="write a runnable Keras training script (.py) or Jupyter notebook (.ipynb) "
                                      "for a saved run, a preset or a spec file")
    _spec_args(p)
    p.add_argument("--run", help="a run folder: export the run's own model, settings and dataset")
    p.add_argument("--format", choices=["py", "ipynb"],
                   help="a Python script or a Jupyter notebook (default: from --out's extension, else py)")
    p.add_argument("--out", help="file to write (default: print it)")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from pathlib import Path

    from cnnkit import codegen, notebook, presets

    if args.run:
        if args.preset or args.spec:
            raise UserError("Export either --run or --preset/--spec, not both.")
        from cnnkit import runs

        run = runs.load_run(args.run)
        spec, hyper, name, title = run.spec, run.hyper, run.dataset_name, run.title
    else:
        spec, preset, _ = _load_spec(args)
        name = Path(args.dataset).stem if Path(args.dataset).suffix else args.dataset
        hyper = preset.hyper if preset else presets.suggested_hyper(spec)
        title = preset.title if preset else spec.name
    fmt = args.format or ("ipynb" if args.out and args.out.lower().endswith(".ipynb") else "py")
    make = notebook.notebook if fmt == "ipynb" else codegen.script
    text = make(spec, hyper, name, title=title)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as err:
            raise UserError(f"Cannot write {args.out} ({err.strerror or err}): check the folder exists.") from None
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


# --- predict: pictures prepared as the draw page does, answered by a run's model -----
def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict the class of image files with a saved run, each prepared exactly "
                                       "as the app prepares a canvas drawing (MNIST) or an upload (other datasets)")
    _model_source_args(p)
    p.add_argument("--dataset", default="mnist",
                   help="with --model: the catalogue dataset it was trained on, for its class names and the way "
                        "pictures are prepared (default mnist)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG/... files, any size")
    p.add_argument("--json", action="store_true", help="print JSON: one object per image with its top three")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from cnnkit import drawing

    predictor, dataset_name = _predictor(args)
    rows, failed = [], 0
    for path in args.images:
        try:
            prepared = drawing.prepare_for(drawing.read_image(path), dataset_name, predictor.input_shape,
                                           predictor.class_names)
            prediction = predictor.predict(prepared.x)
        except UserError as err:
            # One bad file (blank, unreadable) should not hide the answers for the others.
            failed += 1
            rows.append({"file": path, "error": str(err)})
            if not args.json:
                print(f"{path}: error: {err}", file=sys.stderr)
            continue
        rows.append({"file": path, **prediction.to_dict()})
        if not args.json:
            top = ", ".join(f"{name} {p:.1%}" for name, p in prediction.top(3))
            print(f"{path}\t{prediction.label}\t{prediction.confidence:.1%}\ttop 3: {top}")
    if args.json:
        _print_json(rows)
    return 2 if failed else 0


def _predictor(args):
    """(Predictor, dataset name) for --run, or for --model (and --weights) on --dataset's images."""
    from cnnkit import predict, runs
    from cnnkit.datasets import catalogue

    if args.run:
        run = runs.load_run(args.run)
        return predict.predictor_for(run), run.dataset_name
    info = catalogue.get(args.dataset)  # its image shape, class names and title: no pixels needed
    found = _model_file(args, info)
    return predict.Predictor(found.model, info.class_names), info.name


# --- limits ---------------------------------------------------------------------------
def add_limits(sub) -> None:
    p = sub.add_parser("limits", help="the limits that keep one input from taking the server down, "
                                      "and how to change them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_limits)


def cmd_limits(args) -> int:
    from cnnkit import limits

    rows = limits.table()
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['env']:<34}{r['value']:>14,} {r['unit']:<11}{r['what']} ({r['kind']})")
    return 0


# --- settings -----------------------------------------------------------------------------
def add_settings(sub) -> None:
    p = sub.add_parser("settings", help="every CNNKIT_* setting with its value now and where it came from")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--markdown", action="store_true", help="print the README's table of settings and defaults")
    p.set_defaults(func=cmd_settings)


def cmd_settings(args) -> int:
    from cnnkit import settings

    rows = settings.table()
    if args.markdown:
        print(settings.markdown())
        return 0
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        print(f"{r['env']:<30}{r['value']:<34} ({r['source']}) {r['what']}")
    return 0


# --- runs -------------------------------------------------------------------------------
def add_runs(sub) -> None:
    p = sub.add_parser("runs", help="list the saved runs, and the run folders that cannot be read (and why)")
    p.add_argument("--dir", help="the runs folder (default: CNNKIT_RUNS_DIR or ./runs)")
    p.set_defaults(func=cmd_runs)


def cmd_runs(args) -> int:
    from pathlib import Path

    from cnnkit import runs

    root = Path(args.dir) if args.dir else None
    for r in runs.list_runs(root, only_owner=False):
        print(f"{r.path}\t{r.label}")
    bad = runs.damaged_runs(root)
    for path, why in bad:
        print(f"damaged: {path}: {why}")
    return 0


# --- explain ----------------------------------------------------------------------------------
def add_explain(sub) -> None:
    p = sub.add_parser("explain", help="why a saved run answers what it does for one image: a Grad-CAM heat map "
                                       "over the prepared input (and, with --conv, one convolution worked out)")
    _model_source_args(p)
    p.add_argument("--dataset", default="mnist",
                   help="with --model: the catalogue dataset it was trained on (default mnist)")
    p.add_argument("image", metavar="IMAGE", help="a PNG/JPEG/... file, prepared as `predict` prepares it")
    p.add_argument("--out", required=True, help="the PNG to write: the prepared image with the heat map over it")
    p.add_argument("--class", dest="class_name", help="explain this class instead of the answer (\"why not 7?\")")
    p.add_argument("--size", type=int, default=280, help="width of the written PNG in pixels (default 280)")
    p.add_argument("--conv", metavar="ROW,COL,FILTER",
                   help="also work out the first conv layer's number at ROW, COL of filter FILTER (from 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of sentences")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    from pathlib import Path

    from PIL import Image

    from cnnkit import drawing, explain

    predictor, dataset_name = _predictor(args)
    prepared = drawing.prepare_for(drawing.read_image(args.image), dataset_name, predictor.input_shape,
                                   predictor.class_names)
    prediction = predictor.predict(prepared.x)
    k = None
    if args.class_name is not None:
        if args.class_name not in predictor.class_names:
            raise UserError(f"This model's classes are {', '.join(predictor.class_names)}; "
                            f"there is no class '{args.class_name}'.")
        k = predictor.class_names.index(args.class_name)
    smap = predictor.saliency(prepared.x, k)
    picture = explain.overlay(prepared.x, smap.heat)
    factor = max(1, round(args.size / picture.shape[1]))
    big = drawing.enlarge(picture, picture.shape[1] * factor)
    try:
        Image.fromarray(big).save(Path(args.out), format="PNG")
    except OSError as err:
        raise UserError(f"Cannot write {args.out} ({err.strerror or err}): check the folder exists.") from None
    result = {"file": args.image, **prediction.to_dict(), "explained": predictor.class_names[smap.class_index],
              "method": smap.method, "heatmap": args.out,
              "sentence": explain.saliency_sentence(smap, predictor.class_names, prediction.index).replace("**", "")}
    if args.conv:
        try:
            row, col, filt = (int(v) for v in args.conv.split(","))
        except ValueError:
            raise UserError("--conv takes ROW,COL,FILTER as three whole numbers, e.g. --conv 10,12,1.") from None
        a = predictor.conv_arithmetic(prepared.x, row, col, filt - 1)
        result["convolution"] = {"layer": a.layer, "row": row, "col": col, "filter": filt,
                                 "window": a.window.tolist(), "weights": a.kernel.tolist(),
                                 "sum": a.total, "bias": a.bias, "value": a.value, "sentence": a.sentence()}
    if args.json:
        _print_json(result)
    else:
        print(f"{args.image}: {prediction.label} ({prediction.confidence:.1%}); {result['sentence']}")
        print(f"wrote {args.out} ({big.shape[1]}×{big.shape[0]} pixels)")
        if args.conv:
            print(result["convolution"]["sentence"])
    return 0


# --- collection (a dataset the class draws) ------------------------------------------------
def add_collection(sub) -> None:
    p = sub.add_parser("collection", help="the class's drawn collections: list, export as .npz, import an .npz")
    p.add_argument("action", choices=("list", "export", "import"))
    p.add_argument("file", nargs="?", help="import: the .npz to read")
    p.add_argument("--out", help="export: the .npz to write (Keras's layout with class_names)")
    p.add_argument("--id", type=int, help="the collection (default: the newest)")
    p.add_argument("--name", help="import: the new collection's name (default: the file's)")
    p.add_argument("--dir", help="the folder of the store (default: the class folder, CNNKIT_CLASS_DIR)")
    p.set_defaults(func=cmd_collection)


def cmd_collection(args) -> int:
    from cnnkit import class_drawings as cd

    store = cd.store_for(None, class_mode=True, root=args.dir or None)
    if args.action == "list":
        for c in store.collections():
            print(f"{c.id}\t{'open' if c.is_open else 'closed'}\t{sum(store.class_counts(c.id))} drawings\t{c.name}: "
                  f"{', '.join(c.class_names)}")
    elif args.action == "import":
        c = cd.import_npz(store, args.file or cd.refuse("Say which .npz to import: … import FILE.npz"), args.name)
        print(f"imported {sum(store.class_counts(c.id))} drawings as collection {c.id} ({c.name})")
    else:
        out = args.out or cd.refuse("Say where to write it: cnnkit collection export --out FILE.npz")
        c = store.get(args.id) if args.id is not None else store.current()
        ds = cd.to_dataset(store, (c or cd.refuse("No collection has been opened yet.")).id)
        print(f"wrote {cd.export_npz(ds, out)}: {len(ds.x_train)} training and {len(ds.x_test)} test drawings, "
              f"classes {', '.join(ds.class_names)}. {ds.notes[0]}")
    return 0


COMMANDS = [add_datasets, add_limits, add_settings, add_runs, add_summary, add_presets, add_export, add_evaluate,
            add_train, add_predict, add_explain, add_collection]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnkit", description="CNN Lab from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
