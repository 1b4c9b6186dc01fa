"""Stage 4: how good is the model? From the test numbers to the images behind them, and runs side by side.

One function per part of the page: the model picker, the headline numbers, then one per tab. The page's
settings live under its own keys ("ev.*") in st.session_state, so a visit to another page keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from cnnkit import challenge, charts, datasets, evaluation, model_files, run_comparison, run_labels, runs
from cnnkit.errors import UserError
from cnnkit.plain_text import chart_text, inert, inert_message
from cnnkit.spec import format_shape
from webapp import (
    browser_identity,
    dataset_cache,
    drawn_collection,
    lecturer,
    stages,
    student,
    uploaded_model,
    user_errors,
    widget_state,
)

GRID_COLS = 8
GRID_TILE = 104
TABS = ["Report", "Confusion matrix", "Mistakes & samples", "Training curves", "Compare runs", "Other data",
        "Downloads"]
ss = st.session_state


# --- process-wide caches ---------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _evaluations() -> evaluation.EvaluationCache:
    # One LRU for every session: a class looking at the same run pays for one pass.
    return evaluation.EvaluationCache(max_entries=16)


def _evaluate(key, model_or_run, ds, what: str) -> evaluation.Evaluation:
    """The cached evaluation, or one batched pass over the test set behind a progress bar."""
    found = _evaluations().get(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=f"Testing {what} on {len(ds.x_test):,} test images…")
    ev = _evaluations().get_or_evaluate(
        key, model_or_run, ds, progress=lambda f: bar.progress(f, text=f"Testing {what}: {f:.0%} of the test images")
    )
    bar.empty()
    return ev


def _training_link(label: str) -> None:
    if any(s.path == "app_pages/training.py" for s in stages.existing_stages()):
        st.page_link("app_pages/training.py", label=label, icon=":material/model_training:")


def _image_grid(ds, indices, captions, correct) -> None:
    st.html(charts.image_grid_html(ds.x_test[indices], captions, correct, cols=GRID_COLS, tile_px=GRID_TILE))


SOURCES = ["A run I trained", "A model file"]


@dataclass
class Chosen:
    """The model the student chose: one of their runs, or the uploaded model file they keep."""

    run: runs.Run | None = None
    upload: uploaded_model.UploadedModel | None = None

    @property
    def model(self):
        return self.upload.model if self.upload is not None else None

    @property
    def upload_name(self) -> str:
        return self.upload.files[0][0] if self.upload is not None else ""


# --- which model ----------------------------------------------------------------------------
def choose_model(ds, all_runs, my_runs) -> Chosen:
    """The source control and the run picker (with its name box) or the uploader; stops the page when
    there is nothing to evaluate yet."""
    by_id = {r.id: r for r in my_runs}
    widget_state.owned_choice("ev.source", SOURCES, SOURCES[0])
    source = st.segmented_control(
        "Model to evaluate",
        SOURCES,
        help="Every finished training job is saved as a run. You can also upload a model you saved in a lab: "
        "model.save('x.keras'), Keras 2's model.save('x.h5'), or model.to_json() with model.save_weights('x.h5').",
        **widget_state.bind("ev.source", keep=True),
    )
    if (source or SOURCES[0]) == SOURCES[0]:
        return _choose_run(ds, all_runs, my_runs, by_id)
    return _choose_upload(ds)


def _choose_run(ds, all_runs, my_runs, by_id) -> Chosen:
    if not my_runs:
        other = sorted({r.dataset_name for r in all_runs})
        st.info(
            f"There is no trained model for **{inert(ds.title)}** yet. Train one on the Training page — even one "
            "epoch of the fast preset gives something to evaluate — then come back here.",
            icon=":material/info:",
        )
        if other:
            st.caption(f"You have runs for other datasets ({inert(', '.join(other))}): choose that dataset on the Data "
                       "page to evaluate them.")
        _training_link("Go to 3 · Training")
        st.stop()
    if ss.get("ev.run") not in by_id:
        ss["ev.run"] = my_runs[0].id  # a run deleted since, or another dataset's: back to the newest
    labels = run_labels.run_labels(my_runs)  # each says what tells it apart from the others
    pick_col, name_col = st.columns([3, 2], vertical_alignment="bottom")
    run_id = pick_col.selectbox(
        "Run",
        list(by_id),
        format_func=labels.get,
        help="Newest first. Each run keeps its model, architecture, settings and training curves.",
        **widget_state.bind("ev.run"),
    )
    run = by_id[run_id]

    def _rename(run=run) -> None:
        try:
            runs.name_run(run, ss[f"ev.name.{run.id}"])
        except UserError as err:
            user_errors.flash_error("ev.name", str(err))

    name_col.text_input("Name this run", value=run.name, key=f"ev.name.{run.id}", on_change=_rename,
                        placeholder="e.g. more filters", max_chars=80,
                        help="Your own name for the run, shown wherever runs are listed.")
    user_errors.show_flash_error("ev.name")
    return Chosen(run=run)


def _choose_upload(ds) -> Chosen:
    kept = uploaded_model.choose(ds, key="ev_upload")
    if kept is None:
        st.info(
            f"Upload a model saved with `model.save('my_model.keras')` (or a lab's `model.save('…h5')`, or its "
            f"`model.to_json()` file with its `model.save_weights('…h5')` file) whose input is "
            f"{format_shape(ds.image_shape)} (pixels scaled to 0–1) and whose last layer is "
            f"Dense({ds.num_classes}, activation='softmax'). It is kept while you use the app, on the Draw "
            "page too.",
            icon=":material/upload_file:",
        )
        st.stop()
    return Chosen(upload=kept)


def save_upload_as_run(chosen: Chosen, ev: evaluation.Evaluation, ds) -> None:
    """The button that keeps an uploaded model as one of the student's runs, and opens that run."""
    def _save() -> None:
        try:
            run = model_files.save_as_run(chosen.upload.found, ds.name, owner=browser_identity.owner_id(),
                                          test_accuracy=ev.accuracy, test_loss=ev.loss)
        except UserError as err:
            user_errors.flash_error("ev.save", str(err))
            return
        ss["ev.source"], ss["ev.run"] = SOURCES[0], run.id

    st.button("Save as one of my runs", icon=":material/save:", key="ev_save_upload", on_click=_save,
              help="Keeps this model with your runs (it has no training history: it was trained elsewhere), "
              "so it can be compared with them and chosen on the Draw page.")
    user_errors.show_flash_error("ev.save")


def evaluate(chosen: Chosen, ds) -> evaluation.Evaluation:
    """One pass over the test set (or the cached one); stops the page with a sentence when it cannot run."""
    try:
        if chosen.run is not None:
            return _evaluate(evaluation.run_key(chosen.run, ds), chosen.run, ds, chosen.run.title or "the model")
        key = ("upload", chosen.upload.digest, *evaluation.dataset_key(ds))
        return _evaluate(key, chosen.model, ds, chosen.upload_name)
    except UserError as err:
        user_errors.show_error(err)
        st.stop()


# --- the numbers on top -------------------------------------------------------------------------
def headline(ev: evaluation.Evaluation, run, ds) -> None:
    history = run.history if run is not None else {}
    # a row that wraps two by two on a phone (columns would stack all four)
    m1 = m2 = m3 = m4 = st.container(horizontal=True, wrap=True, key="metrics_ev")
    val_acc = (history.get("val_accuracy") or [None])[-1] if history else None
    m1.metric(
        "Test accuracy",
        f"{ev.accuracy:.2%}",
        delta=f"{(ev.accuracy - val_acc) * 100:+.2f} points vs validation" if val_acc is not None else None,
        delta_color="normal",
        help="Share of the test images whose most probable class is the true one; the small figure compares it "
        "with the validation accuracy of the last epoch.",
    )
    m2.metric("Test loss", f"{ev.loss:.4f}",
              help="Mean cross-entropy on the test images: lower means more confident and right.")
    m3.metric("Mistakes", f"{ev.num_wrong:,} of {ev.num_images:,}", help="Test images the model gets wrong.")
    if run is not None and run.from_file:
        m4.metric("Training", "—", delta=f"from {run.metrics.get('file', 'a file')}", delta_color="off",
                  delta_arrow="off", help="This model was trained elsewhere and saved here from its file.")
    elif run is not None:
        secs = run.metrics.get("train_seconds")
        epochs_run = run.metrics.get("epochs_run", len(history.get("loss", [])))
        m4.metric(
            "Training",
            f"{secs:.0f} s" if isinstance(secs, (int, float)) else "—",
            delta=f"{epochs_run} epoch{'s' if epochs_run != 1 else ''}",
            delta_color="off",
            delta_arrow="off",
            help="The time training took, and the epochs it ran.",
        )
    else:
        m4.metric("Evaluated in", f"{ev.seconds:.1f} s", help="One batched pass over the test set.")
    st.caption(f"{inert(ds.title)}: {ev.num_images:,} test images, from {inert(ds.source_text)} · evaluated in one "
               f"batched pass ({ev.seconds:.1f} s).")
    if ev.outputs_were_logits:
        st.warning(
            "This model's last layer has no softmax, so its outputs are scores (logits), not probabilities; "
            "a softmax was applied here to read them as probabilities.",
            icon=":material/warning:",
        )


# --- the class challenge ------------------------------------------------------------------------------
def challenge_line(ch, ds) -> None:
    """The student's best hidden-test score and rank in the class challenge (never a hidden image or label)."""
    if ch is None or ch.dataset_name != ds.name:
        return
    board = challenge.leaderboard(ch, lecturer.challenge_store(), lecturer.class_book())
    mine = challenge.standing(board, browser_identity.owner_id())
    frozen = " The leaderboard is frozen." if board.frozen else ""
    if mine is None:
        st.info(f"Class challenge on {ch.dataset_title}: every run you finish is scored on a hidden test set that "
                f"no page shows; your best score and rank appear here.{frozen}", icon=":material/emoji_events:")
        return
    entry, ranked = mine
    st.info(f"Class challenge on {ch.dataset_title}: your best run scores **{entry.accuracy:.1%}** on the hidden "
            f"test set, **rank {entry.rank} of {ranked}**.{frozen}", icon=":material/emoji_events:")


# --- classification report ------------------------------------------------------------------------
def report_tab(ev: evaluation.Evaluation, report) -> None:
    st.markdown(
        "**Precision** — when the model says *this class*, how often is it right? **Recall** — of the images of "
        "this class, how many does it find? **F1** is their harmonic mean; **support** is the number of test images."
    )
    left, right = st.columns([5, 6])
    with left:
        # a static table: all rows visible on a projector, and the accuracy row's empty cells stay empty
        st.table(report.style.format({"precision": "{:.3f}", "recall": "{:.3f}", "f1-score": "{:.3f}",
                                      "support": "{:,}"}, na_rep=""))
    with right:
        st.plotly_chart(charts.per_class_figure(report), width="stretch", key="ev_bars")
    weakest, weakest_f1 = ev.weakest_class()
    st.markdown(f"Weakest class: **{inert(weakest)}** (F1 {weakest_f1:.3f}). The classes most often confused:")
    confusions = ev.top_confusions(5)
    if len(confusions):
        st.dataframe(confusions, hide_index=True,
                     column_config={"share of true class": st.column_config.NumberColumn(format="percent")})
    else:
        st.success("No test image is misclassified.", icon=":material/check_circle:")


# --- confusion matrix → gallery ---------------------------------------------------------------------
def matrix_tab(ev: evaluation.Evaluation, ds) -> None:
    names = ev.class_names
    cm = ev.confusion_matrix()
    widget_state.owned("ev.normalised", True)
    # Start on the biggest confusion: the most instructive cell.
    confusions = ev.top_confusions(1)
    if len(confusions):
        default_true = names.index(confusions.iloc[0]["true"])
        default_pred = names.index(confusions.iloc[0]["predicted"])
    else:
        default_true = default_pred = 0
    if ss.get("ev.true") not in names or ss.get("ev.pred") not in names:
        ss["ev.true"], ss["ev.pred"] = names[default_true], names[default_pred]

    def _cell_clicked(key: str) -> None:
        # A click selects the invisible marker on that cell; like a heatmap point it carries
        # the class names as x (predicted) and y (true).
        points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
        for point in points:
            if str(point.get("x")) in names and str(point.get("y")) in names:
                ss["ev.true"], ss["ev.pred"] = str(point["y"]), str(point["x"])
                return

    st.markdown(
        "Rows are the true classes, columns what the model predicted; the diagonal holds the right answers. "
        "**Click a cell** (or choose the classes below) to see the test images in it."
    )
    c1, c2, c3 = st.columns([2, 2, 2])
    true_name = c1.selectbox("True class", names, **widget_state.bind("ev.true"))
    pred_name = c2.selectbox("Predicted class", names, **widget_state.bind("ev.pred"))
    normalised = c3.toggle(
        "Colour by share", help="Colour each cell by its share of the true class (counts are shown either way); "
        "shares keep small classes visible.", **widget_state.bind("ev.normalised")
    )
    t, p = names.index(true_name), names.index(pred_name)
    shares = ev.confusion_matrix(normalised=True) if normalised else None
    # app.css shows one of the two: the projector's cells say count and share, a phone's the count alone
    for box, key, phone in (("ev_matrix_box", "ev_matrix", False), ("ev_matrix_phone", "ev_matrix_small", True)):
        with st.container(key=box):
            st.plotly_chart(charts.confusion_matrix_figure(cm, names, normalised=shares, selected=(t, p), phone=phone),
                            key=key, on_select=lambda key=key: _cell_clicked(key), selection_mode="points",
                            width="stretch")

    cell = ev.by_confidence(ev.cell_indices(t, p))
    shown = cell[:40]
    kind = "right" if t == p else "mistaken"
    if len(cell) == 0:
        st.info(f"No test image of **{inert(true_name)}** was predicted as **{inert(pred_name)}**.",
                icon=":material/info:")
    else:
        st.markdown(
            f"**{len(cell):,}** test images of **{inert(true_name)}** predicted as **{inert(pred_name)}** ({kind}); "
            f"{'the first ' + str(len(shown)) + ', ' if len(shown) < len(cell) else ''}most confident first."
        )
        captions, correct = ev.image_labels(shown, short=True)
        _image_grid(ds, shown, captions, correct)


# --- images: most confident mistakes, random sample --------------------------------------------------------
def images_tab(ev: evaluation.Evaluation, ds) -> None:
    st.markdown(
        "Under each image: its true class, then the model's answer and how sure it was. "
        ":green[Green frame] = right, :red[red frame] = wrong."
    )
    st.subheader("The most confident mistakes")
    if ev.num_wrong == 0:
        st.success("The model gets every test image right.", icon=":material/check_circle:")
    else:
        widget_state.owned("ev.n_mistakes", 16)
        n_mistakes = st.slider("How many", 8, 48, step=8, **widget_state.bind("ev.n_mistakes"))
        wrong = ev.confident_mistakes(n_mistakes)
        captions, correct = ev.image_labels(wrong)
        st.caption("Wrong and sure of it: often a badly written digit or an ambiguous picture — sometimes a wrong "
                   "label.")
        _image_grid(ds, wrong, captions, correct)
    st.subheader("Random test images")
    widget_state.owned("ev.seed", 0)
    if st.button("New random sample", icon=":material/casino:", key="ev_new_sample"):
        ss["ev.seed"] += 1
    sample = ev.random_sample(16, seed=ss["ev.seed"])
    captions, correct = ev.image_labels(sample)
    _image_grid(ds, sample, captions, correct)


# --- training curves ----------------------------------------------------------------------------
def curves_tab(run) -> None:
    history = run.history if run is not None else {}
    if run is not None and run.from_file:
        st.info("This run came from a file: it has no training history.", icon=":material/info:")
        return
    if not history:
        st.info("An uploaded model carries no training history; train a run here to see its curves.",
                icon=":material/info:")
        return
    from cnnkit.progress import run_overfitting_note

    st.plotly_chart(charts.training_curves_figure(history), key="ev_curves", width="stretch")
    best = evaluation.best_epoch(history)
    if best is not None:
        st.caption(f"★ marks epoch {best}, where the validation loss was lowest.")
    note = run_overfitting_note(run)
    if note:
        st.warning(note, icon=":material/trending_up:")
    elif "val_loss" not in history:
        st.caption("This run held back no validation images, so only the training curves exist.")


# --- compare runs ----------------------------------------------------------------------------------
def compare_tab(run, my_runs, ds) -> None:
    if len(my_runs) < 2:
        st.info(
            f"Only one run for {inert(ds.title)} so far. Train another (change the architecture or a hyper-parameter) "
            "to compare the two side by side.",
            icon=":material/compare_arrows:",
        )
        _training_link("Train another model")
        return
    by_id = {r.id: r for r in my_runs}
    if run is None:
        default = [r.id for r in my_runs[:2]]
    else:
        default = [run.id] + [r.id for r in my_runs if r.id != run.id][:1]
    if "ev.compare" not in ss or any(i not in by_id for i in ss["ev.compare"]):
        ss["ev.compare"] = [i for i in ss.get("ev.compare", []) if i in by_id] or default
    labels = run_labels.run_labels(my_runs)
    chosen_ids = st.multiselect("Runs to compare", list(by_id), format_func=labels.get,
                                **widget_state.bind("ev.compare"))
    chosen = [by_id[i] for i in chosen_ids if i in by_id]
    if not chosen:
        st.caption("Choose runs above to overlay their curves.")
        return
    known = {r.id: e for r in chosen if (e := _evaluations().get(evaluation.run_key(r, ds))) is not None}
    # Short names in the chart and the table ("Run 1", …); the list says which run each is.
    told_apart = run_labels.run_labels(chosen)
    st.markdown("\n".join(f"{i + 1}. {inert(told_apart[r.id])}" for i, r in enumerate(chosen)))
    with_curves = {f"Run {i + 1}": r.history for i, r in enumerate(chosen) if r.history}
    if with_curves:
        st.plotly_chart(charts.compare_runs_figure(with_curves), key="ev_compare_curves", width="stretch")
    from_file = [f"Run {i + 1}" for i, r in enumerate(chosen) if r.from_file]
    if from_file:
        st.caption(f"{', '.join(from_file)} came from a file: {'it has' if len(from_file) == 1 else 'they have'} "
                   "no training history, so no curves.")
    st.table(run_comparison.compare_columns(chosen, known))
    st.caption("Test figures are measured on this page for runs evaluated here, else as saved at the end of "
               "training.")


# --- downloads ----------------------------------------------------------------------------------------
def downloads_tab(chosen: Chosen, report) -> None:
    run = chosen.run
    stem = run.id if run is not None else chosen.upload_name.rsplit(".", 1)[0]
    d1, d2, d3 = st.columns(3)
    # a run's file is read only when the button is pressed (deferred data), not on every rerun
    model_bytes = run.model_path.read_bytes if run is not None else chosen.upload.single_file
    if model_bytes is not None:  # an uploaded model downloads as the file it came in
        d1.download_button("Model (.keras)" if run is not None else f"Model ({chosen.upload_name})", model_bytes,
                           file_name=f"{stem}.keras" if run is not None else chosen.upload_name,
                           mime="application/octet-stream", icon=":material/download:", key="ev_dl_model")
    d2.download_button("Report (CSV)", report.to_csv(index_label="class").encode(),
                       file_name=f"{stem}-report.csv", mime="text/csv", icon=":material/table:", key="ev_dl_report")
    if run is not None and run.from_file:
        d3.caption("This run came from a file: its architecture is in the model file, so there is no Keras "
                   "script to export.")
    elif run is not None:
        from cnnkit import codegen

        try:
            script = codegen.script(run.spec, run.hyper, run.dataset_name, title=run.title)
        except UserError as err:  # e.g. a run on an uploaded dataset, which the script cannot load
            d3.caption(f"No Keras script for this run: {err}")
        else:
            from cnnkit import notebook

            d3.download_button("Keras script (.py)", script, file_name=codegen.filename(run.spec),
                               mime="text/x-python", icon=":material/code:", key="ev_dl_script")
            d3.download_button("Jupyter notebook (.ipynb)",
                               notebook.notebook(run.spec, run.hyper, run.dataset_name, title=run.title),
                               file_name=notebook.filename(run.spec), mime="application/x-ipynb+json",
                               icon=":material/book:", key="ev_dl_notebook")
    else:
        d3.caption("The Keras script needs the run's architecture; an uploaded model has none here.")
    st.caption("Load the model again with `keras.saving.load_model('…keras')`; the script retrains it from scratch "
               "in plain Keras.")


# --- the same model on other data (cross-evaluation) --------------------------------------------------------
def other_data_tab(chosen: Chosen, ev: evaluation.Evaluation, ds) -> None:
    others = {name: info.title for name, info in datasets.CATALOGUE.items()
              if name != ds.name and info.image_shape == ds.image_shape and info.class_names == ds.class_names}
    others.update(drawn_collection.matching(ds))
    if not others:
        st.info("No other dataset here has the same images and classes. Open a collection of the digits 0–9 on "
                "the Class page and test an MNIST model on your class's handwriting.", icon=":material/compare:")
        return
    pick = st.selectbox("Test this model on", list(others), format_func=others.get, key="ev_other_pick")
    try:
        other = dataset_cache.catalogue_dataset(pick) if pick in datasets.CATALOGUE else \
            drawn_collection.test_set_of(pick)
    except UserError as err:
        user_errors.show_error(err)
        return
    if not evaluation.same_task(ds, other):
        st.info(f"{other.title} does not have the same images and classes as {ds.title}.")
        return
    model = chosen.run if chosen.run is not None else chosen.model
    key = (evaluation.run_key(chosen.run, other) if chosen.run is not None
           else ("upload", chosen.digest, *evaluation.dataset_key(other)))
    ev2 = _evaluate(key, model, other, "the model on the other data")
    left, right = st.columns(2)
    left.metric(f"{inert(ds.title)} (its test set)", f"{ev.accuracy:.1%}")
    right.metric(inert(other.title), f"{ev2.accuracy:.1%}",
                 delta=f"{ev2.accuracy - ev.accuracy:+.1%}")
    # the titles may hold a name a person typed: plain text, never Markdown
    st.markdown(inert_message(evaluation.cross_sentence(ev, ev2, ds.title, other.title)))
    st.plotly_chart(charts.confusion_matrix_figure(ev2.confusion_matrix(), ev2.class_names,
                                                   normalised=ev2.confusion_matrix(normalised=True),
                                                   title=f"Confusion matrix on {chart_text(other.title)}"),
                    key="ev_other_matrix")


# --- the page --------------------------------------------------------------------------------------
def page() -> None:
    st.title("4 · Evaluate the model")
    st.caption(
        "The test images were never seen in training: how the model does on them is the honest estimate of how it "
        "will do on new images. Start from the numbers, then look at the images behind them."
    )
    ch = lecturer.current_challenge()
    # With a challenge on this dataset's test split, its hidden images are left out of everything below.
    ds = challenge.visible_dataset(student.dataset(), ch)
    all_runs = runs.list_runs(owner=browser_identity.owner_id())
    if (damaged := runs.damaged_note()) is not None:
        st.warning(damaged, icon=":material/folder_off:")
    my_runs = [r for r in all_runs if r.dataset_name == ds.name]
    chosen = choose_model(ds, all_runs, my_runs)
    ev = evaluate(chosen, ds)
    headline(ev, chosen.run, ds)
    if chosen.upload is not None:
        save_upload_as_run(chosen, ev, ds)
    challenge_line(ch, ds)

    # The open tab is the page's too: a new run, a click in the matrix or a visit elsewhere keeps it.
    widget_state.owned("ev.tab", TABS[0])
    tabs = st.tabs(TABS, **widget_state.bind("ev.tab"))
    report = ev.classification_report()
    with tabs[0]:
        report_tab(ev, report)
    with tabs[1]:
        matrix_tab(ev, ds)
    with tabs[2]:
        images_tab(ev, ds)
    with tabs[3]:
        curves_tab(chosen.run)
    with tabs[4]:
        compare_tab(chosen.run, my_runs, ds)
    with tabs[5]:
        other_data_tab(chosen, ev, ds)
    with tabs[6]:
        downloads_tab(chosen, report)


page()
