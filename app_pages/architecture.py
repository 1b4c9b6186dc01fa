"""Stage 2: define the architecture layer by layer and watch each output shape and parameter count.

Thin page: the layer catalogue (cnnkit.layers) gives the widgets and the
explanations, ModelSpec gives the summary and the problems, cnnkit.codegen the
exported script. The student's spec lives in st.session_state via webapp/student.py;
every edit goes through a widget callback so the sidebar is up to date too.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from cnnkit import codegen, layers, network_picture, presets, settings
from cnnkit.errors import SpecError, UserError
from cnnkit.plain_text import inert
from cnnkit.spec import ModelSpec, format_bytes, format_count, format_shape
from webapp import student, training_jobs, widget_state

ss = st.session_state
# "Where" a new layer goes: a value, not None (a select box holding None shows "Choose an option").
AT_END = "end"
ss.setdefault("arch_rev", 0)  # bumped on every structural change, so widgets are rebuilt from the spec
ss.setdefault("spec_preset", presets.DEFAULT)  # the preset the spec started from: its training settings

st.title("2 · Define the architecture")
st.caption(
    "Stack layers the way Keras's `Sequential` does. Every change updates each layer's output shape and "
    "parameter count exactly as `model.summary()` would report them."
)

ds = student.dataset()

# A spec built for another dataset's image shape keeps its layers on the new shape.
raw = ss.get("spec")
if raw is not None:
    stored = raw if isinstance(raw, ModelSpec) else ModelSpec.from_dict(raw)
    if tuple(stored.input_shape) != tuple(ds.image_shape):
        student.set_spec(stored.with_input_shape(ds.image_shape))
        st.toast(f"Your model now takes {format_shape(ds.image_shape)} images ({inert(ds.title)}).")
spec = student.current_spec()
student.set_spec(spec)  # the callbacks below edit this stored copy


def _training_time(model: ModelSpec, hyper) -> str | None:
    """The job system's estimate in words (the Training page's figure, from this server's measured speed)."""
    try:
        return training_jobs.job_registry().estimate(model, ds, hyper).time_words()
    except UserError:
        return None    # the model or the settings have a problem: the page says which elsewhere


# --- callbacks: each applies one ModelSpec edit to the stored spec before the rerun ------
def _stored() -> ModelSpec:
    raw = ss["spec"]
    return raw if isinstance(raw, ModelSpec) else ModelSpec.from_dict(raw)


def _commit(new: ModelSpec, structural: bool = True) -> None:
    student.set_spec(new)
    if structural:
        ss.arch_rev += 1
        ss["arch.add_pos"] = AT_END  # the layer numbers changed: the next layer goes at the end again


def _set_param(index: int, name: str, key: str) -> None:
    _commit(_stored().set_param(index, name, ss[key]), structural=False)


def _reset_param(index: int, name: str, default) -> None:
    _commit(_stored().set_param(index, name, default))


def _move(index: int, step: int) -> None:
    _commit(_stored().move_layer(index, step))
    if ss.get("arch_selected") == index:
        ss.arch_selected = index + step


def _remove(index: int) -> None:
    _commit(_stored().remove_layer(index))
    ss.arch_selected = None


def _add() -> None:
    old = _stored()
    pos = ss.get("arch.add_pos")
    at = len(old.layers) if pos == AT_END or pos > len(old.layers) else pos
    _commit(old.insert_layer(at, ss["arch.add_type"]))
    ss.arch_selected = at


def _select(index: int) -> None:
    ss.arch_selected = None if ss.get("arch_selected") == index else index


def _picked_block(key: str) -> None:
    """A click on a block of the picture opens that layer's settings."""
    points = (ss.get(key) or {}).get("selection", {}).get("points") or []
    if points and points[0].get("customdata") is not None:
        index = int(points[0]["customdata"])
        ss.arch_selected = index


def _use_preset() -> None:
    p = presets.get(ss["arch.preset_pick"], ds.image_shape, ds.num_classes)
    ss.spec_preset = p.name
    ss.arch_selected = None
    _commit(p.spec)


def _start_empty() -> None:
    ss.spec_preset = None
    ss.arch_selected = None
    _commit(ModelSpec(ds.image_shape, [], name="my_model"))


def _rename(key: str) -> None:
    _commit(_stored().with_name(ss[key]), structural=False)


# --- start from a preset or from nothing ----------------------------------------------
# The pickers' values are the page's own ("arch.*"): a visit to another page keeps them.
names = presets.names()
if widget_state.owned("arch.preset_pick", ss.spec_preset if ss.spec_preset in names else presets.DEFAULT) not in names:
    ss["arch.preset_pick"] = presets.DEFAULT
widget_state.owned("arch.add_type", layers.LAYER_TYPES[0])
widget_state.owned("arch.add_pos", AT_END)
with st.container(border=True):
    pick, use, empty = st.columns([4, 1.2, 1.2], vertical_alignment="bottom")
    pick.selectbox("Start from a lesson's model", names, **widget_state.bind("arch.preset_pick"),
                   format_func=lambda n: presets.PRESETS[n].title,
                   help="The labs' architectures with the exact parameter counts they quote, and our fast model.")
    use.button("Use this model", key="arch_use_preset", on_click=_use_preset, type="primary",
               icon=":material/playlist_add_check:", width="stretch")
    empty.button("Start empty", key="arch_empty", on_click=_start_empty, icon=":material/delete_sweep:",
                 width="stretch")
    chosen = presets.get(ss["arch.preset_pick"], ds.image_shape, ds.num_classes)
    st.caption(chosen.description)
    n_train = len(ds.y_train)
    suggested = chosen.hyper_for(n_train)
    other = (f" (its settings for fewer than {presets.SMALL_DATA_IMAGES:,} training images; with more: "
             f"{chosen.hyper.describe()})" if suggested != chosen.hyper else "")
    st.caption(f"Suggested training: {suggested.describe()}{other}. {chosen.lesson}")
    st.caption(presets.cost_words(chosen.name, ds.image_shape, ds.num_classes, n_train,
                                  training_time=_training_time(chosen.spec, suggested)))
    with st.expander("What every preset costs: FLOPs per image, seconds per epoch, accuracy"):
        st.dataframe(presets.cost_frame(ds.image_shape, ds.num_classes, n_train), hide_index=True,
                     column_config={"test accuracy": st.column_config.NumberColumn(format="percent"),
                                    "parameters": st.column_config.NumberColumn(format="localized")})
        st.caption("CPU-seconds per epoch were measured on this project's 2-core machine (bench/bench_training.py) "
                   "for 28×28×1 images; a server busy with other work needs more. FLOPs are worked out from the "
                   "layers: the cost per image, not the parameter count, sets the training time.")

summary = spec.summary()
class_mode = settings.get("class_mode")   # cost over the limits: refused in class mode, warned otherwise
by_layer = spec.problems_by_layer(ds.num_classes, refuse_cost=class_mode)  # under the layer that causes each
n_problems = sum(len(msgs) for msgs in by_layer.values())
rev = ss.arch_rev


def _widget(index: int, pdef: layers.ParamDef, value) -> None:
    """One setting's widget, built from its catalogue definition."""
    key = f"arch{rev}_{index}_{pdef.name}"
    common = dict(key=key, help=pdef.help, on_change=_set_param, args=(index, pdef.name, key))
    bad = pdef.check(value) is not None
    if pdef.kind == "choice":
        if value not in pdef.choices:
            st.button(f"Reset {pdef.label.lower()} to {pdef.default}", key=key, on_click=_reset_param,
                      args=(index, pdef.name, pdef.default))
            return
        st.selectbox(pdef.label, pdef.choices, index=pdef.choices.index(value), **common)
    elif pdef.kind == "bool":
        if not isinstance(value, bool):
            st.button(f"Reset {pdef.label.lower()}", key=key, on_click=_reset_param,
                      args=(index, pdef.name, pdef.default))
            return
        st.toggle(pdef.label, value=value, **common)
    else:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and (not is_number or not math.isfinite(value)
                                  or (pdef.kind == "int" and int(value) != value)):
            st.button(f"Reset {pdef.label.lower()} to {pdef.default}", key=key, on_click=_reset_param,
                      args=(index, pdef.name, pdef.default))
            return
        if pdef.kind == "int":
            bounds = {} if bad else dict(min_value=int(pdef.min), max_value=int(pdef.max))
            st.number_input(pdef.label, value=None if value is None else int(value), step=1,
                            placeholder=pdef.none_label or None, **bounds, **common)
        else:
            top = pdef.max - 0.01 if pdef.max_exclusive else pdef.max
            bounds = {} if bad else dict(min_value=float(pdef.min), max_value=float(top))
            st.number_input(pdef.label, value=float(value), step=float(pdef.step or 0.01), format="%.2f",
                            **bounds, **common)


editor, overview = st.columns([5, 6], gap="medium")

# --- the layer list: one compact row per layer, the settings of the selected one ---------------
with editor:
    st.subheader("Layers")
    st.text_input("Model name", value=spec.name, key=f"arch{rev}_name", on_change=_rename,
                  args=(f"arch{rev}_name",),
                  help="Used for the saved run, the JSON file and the exported script.")
    st.markdown(f"**Input** · {format_shape(spec.input_shape)} images ({inert(ds.title)})")
    if not spec.layers:
        st.info("No layers yet. Pick a lesson's model above, or add layers below: for example Conv2D, "
                "MaxPooling2D, Flatten and a Dense layer with softmax.", icon=":material/info:")
    else:
        st.caption("Press :material/tune: on a layer (or click its block in the picture) to change its settings, "
                   "move it and see what it does.")
    n = len(spec.layers)
    selected = ss.get("arch_selected")
    for i, (layer, row) in enumerate(zip(spec.layers, summary.rows, strict=True)):
        entry = layers.CATALOGUE.get(layer.type)
        is_open = selected == i
        with st.container(border=True, key=f"arch_layer{i}"):
            # a horizontal container keeps the buttons on the row on a phone too (columns would stack)
            with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False):
                # one line: the number, the type and the shape (the picture beside it shows the parameters)
                short = network_picture.SHORT_NAMES.get(layer.type, layer.type)
                st.markdown(f"**{i + 1} · {short}** → {format_shape(row.output_shape)}", width="stretch")
                st.button("", key=f"arch{rev}_info{i}", icon=":material/tune:",
                          type="primary" if is_open else "secondary",
                          help="Close the settings" if is_open else "Change its settings, explain this layer",
                          on_click=_select, args=(i,))
                st.button("", key=f"arch{rev}_rm{i}", icon=":material/close:", help="Remove this layer",
                          on_click=_remove, args=(i,))
            if is_open:   # moving a layer is part of changing it: the row itself stays one line
                with st.container(horizontal=True, gap="small"):
                    st.button("Move up", key=f"arch{rev}_up{i}", icon=":material/arrow_upward:",
                              on_click=_move, args=(i, -1), disabled=i == 0)
                    st.button("Move down", key=f"arch{rev}_down{i}", icon=":material/arrow_downward:",
                              on_click=_move, args=(i, 1), disabled=i == n - 1)
            if entry is not None and is_open:
                if entry.params:
                    resolved = entry.resolve(layer.params)
                    # at most three settings a row, so labels stay readable in a narrow column
                    for start in range(0, len(entry.params), 3):
                        chunk = entry.params[start:start + 3]
                        for col, pdef in zip(st.columns(3), chunk, strict=False):
                            with col:
                                _widget(i, pdef, resolved[pdef.name])
                st.info(f"{entry.explain}\n\n**Parameters here:** {spec.count_formula(i)}", icon=":material/school:")
            for msg in by_layer.get(i, []):
                st.error(msg, icon=":material/error:")

    with st.container(border=True):
        st.markdown("**Add a layer**")
        t, where = st.columns(2)
        t.selectbox("Layer type", layers.LAYER_TYPES, **widget_state.bind("arch.add_type"),
                    format_func=lambda k: layers.CATALOGUE[k].title)
        positions = [AT_END, *range(n)]
        if ss["arch.add_pos"] not in positions:
            ss["arch.add_pos"] = AT_END
        where.selectbox("Where", positions, **widget_state.bind("arch.add_pos"),
                        format_func=lambda p: "at the end" if p == AT_END else
                        f"before layer {p + 1} ({spec.layers[p].type})")
        st.button("Add this layer", key="arch_add", on_click=_add, icon=":material/add:", type="primary")
        add_entry = layers.CATALOGUE[ss["arch.add_type"]]
        st.caption(f"**{add_entry.title}** — {add_entry.explain}")

# --- the summary ------------------------------------------------------------------------------
with overview, st.container(key="arch_summary"):
    # The totals and the verdict first: they stay in view (the column is sticky) while the layers are edited.
    total, verdict = st.columns([2, 3], vertical_alignment="center")
    total.metric("Total parameters", f"{summary.total_params:,}" + ("" if summary.complete else " +?"),
                 help="Non-trainable: BatchNormalization's moving mean and variance. Weights take parameters × 4 "
                      "bytes; FLOPs per image are 2 × the multiply-adds of Conv2D and Dense.")
    for msg in by_layer.get(None, []):
        st.error(msg, icon=":material/error:")
    if n_problems:
        verdict.warning(f"{n_problems} problem{'s' if n_problems != 1 else ''} to fix before this model can "
                   "be trained: see the messages in red.", icon=":material/build:")
    else:
        verdict.success(f"Ready to train on {inert(ds.title)}: {ds.num_classes} classes, "
                   f"output {format_shape(summary.output_shape)}.",
                   icon=":material/check_circle:")
    for msg in spec.cost_warnings(refuse_cost=class_mode):  # over a cost limit, on one's own machine
        st.warning(msg, icon=":material/speed:")
    if spec.layers:
        blocks = network_picture.blocks(spec, by_layer)
        # One picture for a projector (5 blocks a row), one for a phone (4): app.css shows the one that fits.
        for box, per_row in (("arch_picture_wide", network_picture.PER_ROW),
                             ("arch_picture_narrow", network_picture.PHONE_PER_ROW)):
            with st.container(key=box):
                key = f"{box}_chart{rev}"
                st.plotly_chart(network_picture.network_figure(blocks, per_row=per_row, selected=selected),
                                key=key, on_select=lambda k=key: _picked_block(k), selection_mode="points",
                                config={"displayModeBar": False}, width="stretch")
        st.caption(f"{summary.trainable_params:,} trainable · {summary.non_trainable_params:,} non-trainable · "
                   f"weights {format_bytes(summary.weight_bytes)} · {format_count(summary.flops)} FLOPs per image · "
                   f"{len(spec.layers)} layers")
        if not n_problems and (time_words := _training_time(spec, student.current_hyper())):
            st.caption(f"Training it with your settings: {time_words}; the Training page says why.")
        st.caption(network_picture.picture_text(blocks) + " Under each block: its output shape and its "
                   "parameters; beside it: its number. Click a block to change its settings.")
        for line in network_picture.problem_lines(blocks):
            st.error(line, icon=":material/error:")
        with st.expander("As a table, like model.summary()"):
            table = pd.DataFrame(
                [{"Layer": f"{r.index + 1} · {r.name}", "Output shape": format_shape(r.output_shape),
                  "Param #": f"{r.params:,}" if r.params is not None else "?"} for r in summary.rows]
            )
            # a static table: every column in view, the numbers right-aligned like model.summary()
            st.table(table.set_index("Layer").style.set_properties(subset=["Param #"], **{"text-align": "right"}))

# --- save / load / export -----------------------------------------------------------
st.subheader("Save, load, export")
save_col, export_col = st.columns(2, gap="large")
with save_col:
    base = spec.name or "my_model"
    st.download_button("Download model (JSON)", spec.to_json(), file_name=f"{base}.json",
                       mime="application/json", icon=":material/download:", key="arch_dl_json", on_click="ignore",
                       width="stretch")
    up_file = st.file_uploader("Load a model (JSON saved from this page)", type=["json"], key="arch_upload")
    if up_file is not None and ss.get("arch_upload_done") != up_file.file_id:
        ss.arch_upload_done = up_file.file_id
        try:
            loaded = ModelSpec.from_json(up_file.getvalue())
            if tuple(loaded.input_shape) != tuple(ds.image_shape):
                st.info(f"This model was made for {format_shape(loaded.input_shape)} images; it now takes "
                        f"{format_shape(ds.image_shape)} ({inert(ds.title)}).", icon=":material/info:")
                loaded = loaded.with_input_shape(ds.image_shape)
            loaded = loaded.with_name(loaded.name or up_file.name.rsplit(".", 1)[0])
            ss.spec_preset = None
            ss.arch_selected = None
            _commit(loaded)
            ss.arch_upload_error = None
            st.rerun()
        except SpecError as err:
            ss.arch_upload_error = str(err)
    if up_file is not None and ss.get("arch_upload_error"):
        st.error(ss.arch_upload_error, icon=":material/error:")

with export_col:
    hyper = student.current_hyper()
    try:
        code = None if n_problems else codegen.script(spec, hyper, ds.name, title=spec.name or "my model")
    except UserError as err:  # a training setting left unusable on the Training page
        code = None
        st.caption(f"The Keras script can be exported once the training settings are usable: {err}")
    if n_problems:
        st.caption("The Keras script can be exported once the model has no problems.")
    elif code is not None:
        st.download_button("Export Keras script (.py)", code, file_name=codegen.filename(spec),
                           mime="text/x-python", icon=":material/code:", key="arch_dl_script", on_click="ignore",
                           width="stretch")
        from cnnkit import notebook

        st.download_button("Export Jupyter notebook (.ipynb)",
                           notebook.notebook(spec, hyper, ds.name, title=spec.name or "my model"),
                           file_name=notebook.filename(spec), mime="application/x-ipynb+json", icon=":material/book:",
                           key="arch_dl_notebook", on_click="ignore", width="stretch")
        with st.expander("Show the script"):
            st.caption(f"Training settings (set on the Training page): {hyper.describe()}. Runs anywhere Keras is "
                       f"installed: `python {codegen.filename(spec)}` (add `--epochs 1 --limit 500` for a quick "
                       "trial).")
            st.code(code, language="python", wrap_lines=True)   # a phone wraps it: no mouse-only scroll
