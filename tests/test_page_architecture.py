"""AppTest drives the architecture page: presets, adding/moving/removing layers, widgets, problems, export."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit import codegen, presets
from cnnkit.spec import ModelSpec

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def total(at: AppTest) -> str:
    return next(m.value for m in at.metric if m.label == "Total parameters")


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def rev(at: AppTest) -> int:
    return at.session_state["arch_rev"]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture
def at() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    app.switch_page("app_pages/architecture.py")
    app.run()
    assert not app.exception
    return app


def use_preset(at: AppTest, name: str) -> None:
    at.selectbox(key="_w.arch.preset_pick").select(name).run()
    button(at, "arch_use_preset").click().run()
    assert not at.exception


def test_starts_with_the_default_preset_and_is_ready(at):
    assert presets.DEFAULT == presets.LECTURE
    assert total(at) == f"{presets.get(presets.DEFAULT).spec.summary().total_params:,}"
    assert any("Ready to train" in s.value for s in at.success)
    assert not errors(at)
    # The chosen preset's cost, and every preset's cost side by side.
    assert any(c.value.startswith("Cost: 3.7 million FLOPs per image") for c in at.caption)
    # The suggested training is what the Training page will start from on this dataset (the offline sample
    # is small: the lecture preset's small-data settings), and it says what it suggests on a full-size one.
    lecture = presets.get(presets.LECTURE)
    suggested = [c.value for c in at.caption if c.value.startswith("Suggested training:")]
    assert suggested == [f"Suggested training: {lecture.small_data.describe()} (its settings for fewer than "
                         f"{presets.SMALL_DATA_IMAGES:,} training images; with more: {lecture.hyper.describe()}). "
                         f"{lecture.lesson}"]
    table = at.dataframe[0].value
    assert list(table["preset"]) == [presets.PRESETS[n].title for n in presets.names()]
    assert table["MFLOPs / image"].tolist() == [round(r.mflops, 2) for r in presets.cost_table()]


def test_preset_add_break_fix(at):
    use_preset(at, "single_conv")
    assert total(at) == "542,230"
    assert at.session_state["spec_preset"] == "single_conv"
    # the stored spec (what the training page and the sidebar read) follows the page
    assert ModelSpec.from_dict(at.session_state["spec"]).summary().total_params == 542_230

    # add a Dense 128 before the output layer: 5,408·128+128 and 128·10+10 replace 5,408·100+100 and 100·10+10
    at.selectbox(key="_w.arch.add_type").select("Dense").run()
    at.selectbox(key="_w.arch.add_pos").select(4).run()
    button(at, "arch_add").click().run()
    assert not at.exception
    expected = 320 + 5408 * 100 + 100 + 100 * 128 + 128 + 128 * 10 + 10
    assert total(at) == f"{expected:,}"

    # break it: remove Flatten (layer 3)
    button(at, f"arch{rev(at)}_rm2").click().run()
    assert any("Dense receives a 3-D tensor (13×13×32)" in e for e in errors(at))
    assert any("problem" in w.value for w in at.warning)
    assert not any(b.key == "arch_dl_script" for b in at.get("download_button"))

    # fix it: add Flatten back before layer 3
    at.selectbox(key="_w.arch.add_type").select("Flatten").run()
    at.selectbox(key="_w.arch.add_pos").select(2).run()
    button(at, "arch_add").click().run()
    assert not errors(at)
    assert total(at) == f"{expected:,}"
    assert any("Ready to train" in s.value for s in at.success)


def test_pickers_keep_their_values_across_a_visit_to_another_page(at):
    # Streamlit forgets a keyed widget that a run did not draw: the page owns these values, so
    # Architecture → Home → Data → Architecture leaves both pickers where the student put them.
    use_preset(at, "single_conv")
    at.selectbox(key="_w.arch.preset_pick").select("two_conv").run()
    at.selectbox(key="_w.arch.add_type").select("Dropout").run()
    at.selectbox(key="_w.arch.add_pos").select(3).run()
    for page in ("app_pages/home.py", "app_pages/data.py", "app_pages/architecture.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    assert at.selectbox(key="_w.arch.preset_pick").value == "two_conv"
    assert at.selectbox(key="_w.arch.add_type").value == "Dropout"
    assert at.selectbox(key="_w.arch.add_pos").value == 3
    assert total(at) == "542,230"  # choosing a preset is not using it
    button(at, "arch_add").click().run()
    assert ModelSpec.from_dict(at.session_state["spec"]).layers[3].type == "Dropout"
    assert at.selectbox(key="_w.arch.add_pos").value == "end"  # layers renumbered: the next one goes at the end


def test_where_a_new_layer_goes_says_at_the_end_not_choose_an_option(at):
    # A select box whose value is None shows Streamlit's placeholder "Choose an option": the end is a value.
    where = at.selectbox(key="_w.arch.add_pos")
    assert where.value == "end" and where.index == 0 and where.options[0] == "at the end"


def test_widgets_change_the_numbers(at):
    use_preset(at, "single_conv")
    assert not any(n.key == f"arch{rev(at)}_0_filters" for n in at.number_input)  # settings of the chosen layer only
    button(at, f"arch{rev(at)}_info0").click().run()
    at.number_input(key=f"arch{rev(at)}_0_filters").set_value(16).run()
    assert total(at) == f"{160 + 13 * 13 * 16 * 100 + 100 + 1010:,}"
    at.selectbox(key=f"arch{rev(at)}_0_padding").select("same").run()
    assert total(at) == f"{160 + 14 * 14 * 16 * 100 + 100 + 1010:,}"
    # a last layer without softmax is a problem shown under that layer
    button(at, f"arch{rev(at)}_info4").click().run()
    at.selectbox(key=f"arch{rev(at)}_4_activation").select("relu").run()
    assert any("use softmax" in e for e in errors(at))
    at.selectbox(key=f"arch{rev(at)}_4_activation").select("softmax").run()
    assert not errors(at)


def test_move_explain_and_empty(at):
    use_preset(at, "keras_convnet")
    assert total(at) == "34,826"
    # Dropout (layer 6) moved below Dense: the model now ends with Dropout (moving is inside the opened layer)
    assert not any(b.key == f"arch{rev(at)}_down5" for b in at.button)
    button(at, f"arch{rev(at)}_info5").click().run()
    button(at, f"arch{rev(at)}_down5").click().run()
    assert any("ends with Dropout" in e for e in errors(at))
    button(at, f"arch{rev(at)}_up6").click().run()
    assert not errors(at)
    button(at, f"arch{rev(at)}_info0").click().run()
    assert any("3×3 kernel × 1 input channel × 32 filters + 32 biases = 320" in i.value for i in at.info)
    button(at, "arch_empty").click().run()
    assert any("No layers yet" in i.value for i in at.info)
    assert any("no layers" in e for e in errors(at))
    assert total(at) == "0"


def test_export_script_matches_the_page(at):
    use_preset(at, "two_conv_dropout")
    assert any(b.key == "arch_dl_script" for b in at.get("download_button"))
    [code] = [c.value for c in at.code]
    spec = presets.get("two_conv_dropout").spec
    assert code.strip() == codegen.script(spec, presets.get("two_conv_dropout").hyper, "mnist", title=spec.name).strip()
    assert "LEARNING_RATE = 1.0\n" in code and "keras.optimizers.Adadelta(learning_rate=LEARNING_RATE)" in code


def test_a_spec_from_another_dataset_shape_is_adapted(at):
    # e.g. a spec saved while CIFAR-10 was chosen: the page keeps the layers on the current 28×28×1 input
    spec = presets.get("single_conv", (32, 32, 3)).spec
    at.session_state["spec"] = spec.to_dict()
    at.run()
    assert not at.exception
    assert total(at) == "542,230"


@pytest.mark.browser
def test_browser_save_and_load_json(app_server, browser_page, idle, tmp_path):
    """File upload and download need a real browser: bad JSON gives a sentence, a saved model loads back."""
    page = browser_page
    page.goto(app_server)
    idle(page)
    page.get_by_role("link", name="2 · Architecture").first.click()
    idle(page)
    page.get_by_role("heading", name="2 · Define the architecture").wait_for()

    with page.expect_download() as dl:
        page.get_by_role("button", name="Download model (JSON)").click()
    saved = ModelSpec.from_json(Path(dl.value.path()).read_text())
    assert saved.summary().total_params == presets.get(presets.DEFAULT).spec.summary().total_params

    bad = tmp_path / "broken.json"
    bad.write_text("{this is not json")
    uploader = page.locator("[data-testid='stFileUploader'] input[type='file']").first
    uploader.set_input_files(str(bad))
    idle(page)
    page.get_by_text("This file is not valid JSON").first.wait_for()

    good = tmp_path / "lab_a.json"
    good.write_text(presets.get("single_conv").spec.to_json())
    uploader.set_input_files(str(good))
    idle(page)
    page.get_by_text("542,230").first.wait_for()
    assert page.get_by_text("This file is not valid JSON").count() == 0
    page.screenshot(path=str(tmp_path / "architecture.png"), full_page=True)


def test_the_training_time_is_the_training_pages_figure(at):
    """The Architecture page's training time comes from the job system's estimate, the Training page's figure."""
    import re

    mine = [c.value for c in at.caption if c.value.startswith("Training it with your settings: about ")]
    assert len(mine) == 1 and "on this server (" in mine[0], [c.value for c in at.caption]
    seconds = re.search(r"about (.+?) on this server", mine[0]).group(1)
    preset_line = next(c.value for c in at.caption if c.value.startswith("Cost: 3.7 million FLOPs per image"))
    # The default model is the chosen preset and the student's settings are its suggested ones: one figure.
    assert f"training it with the suggested settings takes about {seconds} on this server" in preset_line
    at.switch_page("app_pages/training.py").run()
    assert not at.exception
    cost = next(c.value for c in at.caption if c.value.startswith("**Cost:**"))
    assert f"about {seconds} on this server" in cost, cost
