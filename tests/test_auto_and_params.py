"""Issue #14 in the app, without a server: the "auto" preset decided by the run (never by an upload racing it), and
every /stylize parameter sent wrong getting a one-line message."""

from __future__ import annotations

import math

import pytest
from PIL import Image

import app
from style_core import modes
from style_core.config import ConfigError
from style_core.frames import Frame


@pytest.mark.parametrize(
    "found, chosen, words",
    [
        ((True, True), "pixar-portrait", "portrait mode (pixar-portrait): auto found a face in both pictures"),
        ((True, False), "balanced", "plain mode (balanced): auto found no face in the style picture"),
        ((False, True), "balanced", "no face in your photo"),
        ((False, False), "balanced", "no face in either picture"),
        ("faces cannot be looked for here (dlib is not installed)", "balanced", "dlib is not installed"),
    ],
)
def test_auto_resolves_from_the_pictures_and_says_why(monkeypatch, found, chosen, words):
    monkeypatch.setattr(modes, "faces_in", lambda content, style: found)
    name, why = modes.resolve_preset("auto", "photo.png", "style.png")
    assert name == chosen and words in why


def test_a_chosen_preset_is_the_one_that_runs(monkeypatch):
    monkeypatch.setattr(modes, "faces_in", lambda *a: pytest.fail("a chosen preset needs no face detection"))
    assert modes.resolve_preset("balanced", "p", "s") == ("balanced", "plain mode (balanced), the preset chosen")
    assert modes.resolve_preset("pixar-portrait", "p", "s")[0] == "pixar-portrait"


@pytest.fixture
def pictures(tmp_path):
    photo, style = tmp_path / "photo.png", tmp_path / "style.png"
    Image.new("RGB", (64, 64), (200, 150, 120)).save(photo)
    Image.new("RGB", (64, 64), (20, 40, 200)).save(style)
    return str(photo), str(style)


def _run(monkeypatch, pictures, **controls):
    """The /stylize handler's outputs, with the engine stood in for; and the config it was given."""
    seen = {}

    def fake_stylize(content, styles, config, should_stop=None):
        seen["config"] = config
        yield Frame(content, config.steps, config.steps, config.size, 0, 1, {"total": 1.0}, 0.1, True, "final")

    monkeypatch.setattr(app, "stylize", fake_stylize)
    outputs = list(app.run_stylize(*pictures, **controls))
    return outputs[-1], seen["config"]


def test_the_run_decides_auto_at_its_start_and_the_result_says_which_mode_ran(monkeypatch, pictures):
    monkeypatch.setattr(modes, "faces_in", lambda content, style: (True, True))
    final, config = _run(monkeypatch, pictures, size=64)
    assert config.portrait
    assert final[8] == "**Mode:** portrait mode (pixar-portrait): auto found a face in both pictures"
    assert final[5]["mode"].startswith("portrait mode") and "--preset pixar-portrait" in final[5]["command"]

    monkeypatch.setattr(modes, "faces_in", lambda content, style: (True, False))
    final, config = _run(monkeypatch, pictures, size=64)
    assert not config.portrait and final[8].startswith("**Mode:** plain mode (balanced)")


def test_a_picked_preset_runs_whatever_the_faces(monkeypatch, pictures):
    monkeypatch.setattr(modes, "faces_in", lambda content, style: (True, True))
    final, config = _run(monkeypatch, pictures, preset="fast-preview", size=64)
    assert not config.portrait and config.steps == 120 and "the preset chosen" in final[8]


def test_an_upload_never_switches_the_preset_menu():
    demo = app.build_app()
    menu = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "preset")
    pictures = {b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) in ("content", "style")}
    for dep in demo.config["dependencies"]:
        triggers = {t[0] for t in dep["targets"]}
        if triggers & pictures:
            assert menu._id not in dep["outputs"], dep
    assert menu.value == "auto"


def test_the_upload_hint_says_what_auto_will_do(monkeypatch, pictures):
    monkeypatch.setattr(app, "faces_in", lambda content, style: (True, True))
    assert "portrait mode" in app.faces_hint(*pictures, "auto")
    assert app.faces_hint(*pictures, "balanced") == ""
    assert app.faces_hint(None, pictures[1], "auto") == ""


# Every named parameter and the JSON field sent wrong: (parameter, value, words the message holds).
WRONG = [
    ("preset", "nope", "unknown preset"),
    ("preset", 7, "preset' must be a short text"),
    ("size", "abc", "size must be a number"),
    ("size", -5, "size must be between"),
    ("size", 8192, "limited to 1024 px"),
    ("size", math.nan, "size' must be a finite number"),
    ("size", [1], "size' must be a finite number"),
    ("steps", 100000, "steps must be between 0 and 2000"),
    ("steps", 1.5, "steps' must be a whole number"),
    ("blend1", 2, "blend1 must be between 0 and 1"),
    ("style_strength", math.nan, "style_strength' must be a finite number"),
    ("keep_face", math.inf, "keep_face' must be a finite number"),
    ("style_loss", 5, "style_loss' must be a short text"),
    ("style_loss", "nope", "style_loss must be gram or w2"),
    ("optimizer", "sgd", "optimizer must be"),
    ("pooling", None, "pooling' must be a short text"),
    ("preserve_colors", "yes", "preserve_colors' must be true or false"),
    ("init", "zeros", "init must be"),
    ("seed", "x", "seed must be a number"),
    ("backbone", "resnet", "backbone must be"),
    ("warp_strength", 2, "warp_strength must be between 0 and 1"),
    ("cartoon", math.nan, "cartoon' must be a finite number"),
    ("face_index", 1.5, "face_index' must be a whole number"),
    ("face_index", 1000, "face_index must be between"),
    ("background", "sky", "background must be painted, flat, photo"),
    ("extra_json", '{"size": 8192}', "'size' has its own parameter (size)"),
    ("extra_json", '{"steps": 100000}', "'steps' has its own parameter (steps)"),
    ("extra_json", '{"weights": "/etc/ssl/certs.h5"}', "'weights' is set by the server's own flags"),
    ("extra_json", '{"device": "cuda"}', "'device' is set by the server's own flags"),
    ("extra_json", '{"weights_source": "hub"}', "'weights_source' is set by the server's own flags"),
    ("extra_json", '{"nope": 1}', "unknown setting 'nope'"),
    ("extra_json", "[1, 2]", "must be a JSON object"),
    ("extra_json", "{bad", "not valid JSON"),
    ("extra_json", '{"tv_weight": NaN}', "NaN is not a number"),
    ("extra_json", '{"tv_weight": "x"}', "'tv_weight' must be a finite number"),
    ("extra_json", '{"style_layers": "relu1_1"}', "'style_layers' must be a list"),
    ("extra_json", '{"start_size": 99999}', "'start_size' is limited to 1024"),
    ("extra_json", '{"style_scale": 8}', "'style_scale' is limited to 3"),
    ("extra_json", '{"tv_weight": -1}', "tv_weight must be a finite number >= 0"),
    ("extra_json", '{"lbfgs_history": 1e9}', "'lbfgs_history' is limited to 200"),
    ("extra_json", '{"lbfgs_smoothing": -1}', "lbfgs_smoothing must be between 0 and 1000"),
    ("extra_json", 5, "extra_json must be JSON text"),
]


@pytest.mark.parametrize("name, value, words", WRONG, ids=[f"{n}={v!r}" for n, v, _ in WRONG])
def test_every_parameter_sent_wrong_gets_one_line_naming_it(name, value, words):
    controls = app.Controls("photo.png", "style.png", preset="balanced")
    setattr(controls, name, value)
    with pytest.raises(ConfigError) as info:
        app.build_config(controls)
    message = str(info.value)
    assert words in message, message
    assert "\n" not in message and len(message) < 200


def test_the_handler_answers_a_wrong_parameter_with_a_gradio_error(pictures):
    import gradio as gr

    with pytest.raises(gr.Error) as info:
        list(app.run_stylize(*pictures, preset="balanced", extra_json='{"size": 8192}'))
    assert "has its own parameter" in info.value.message


def test_the_background_choice_is_on_the_page_beside_the_preset():
    demo = app.build_app()
    radio = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "background")
    assert radio.choices and [c[1] for c in radio.choices] == ["painted", "flat", "photo"]
    assert "keep your photo's background" in radio.info
    config = app.build_config(app.Controls("p.png", "s.png", preset="pixar-portrait", background="photo"))
    assert config.background == "photo"


def test_the_loss_plot_runs_on_across_a_portrait_runs_paintings(monkeypatch, pictures):
    """The whole picture, then the face's crop, each count their steps from 0: the plot's steps keep growing."""

    def two_paintings(content, styles, config, should_stop=None):
        for step, total, event in ((10, 40, "progress"), (40, 40, "scale"), (10, 60, "progress"), (60, 60, "final")):
            yield Frame(content, step, total, config.size, 0, 1, {"total": 1.0 + step}, 0.1, event == "final", event)

    monkeypatch.setattr(app, "stylize", two_paintings)
    outputs = list(app.run_stylize(*pictures, preset="balanced", size=64))
    plot = outputs[-1][2]
    assert list(plot["step"]) == [10, 40, 50, 100]
