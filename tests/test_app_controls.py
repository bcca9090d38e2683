"""The app's pieces without a server: the /stylize API's parameters, the controls -> config mapping, the command
it shows (which must parse back to the same config), and the adapter over gradio's internals."""

from __future__ import annotations

import dataclasses
import logging
import shlex
from types import SimpleNamespace

import pytest

import app
import queue_watch
from style_core.cli import build_parser, config_from_args

# The /stylize API as gradio_client callers and the README know it: names, order, defaults.
API = [
    "content", "style", "preset", "size", "style2", "style3", "blend1", "blend2", "blend3", "steps",
    "style_strength", "keep_face", "style_loss", "optimizer", "pooling", "preserve_colors", "match_style_colors",
    "init", "seed", "backbone", "extra_json", "warp_strength", "region_colors", "skin_smoothing", "face_index",
    "cartoon", "flatten", "background",  # added after the old ones: positional callers keep working
    "skin_tone", "hair_tone",
]


def test_the_stylize_api_keeps_its_named_parameters():
    info = app.build_app().get_api_info()["named_endpoints"]["/stylize"]
    params = info["parameters"]
    assert [p["parameter_name"] for p in params] == API
    required = [p["parameter_name"] for p in params if not p["parameter_has_default"]]
    assert required == ["content", "style"]
    defaults = {p["parameter_name"]: p.get("parameter_default") for p in params}
    assert defaults["preset"] == "auto" and defaults["size"] == 384 and defaults["face_index"] == -1


def test_the_handler_takes_the_controls_by_position_and_by_name(monkeypatch):
    seen = []

    @app.controls_handler
    def handler(controls, request=None):
        seen.append((controls, request))
        yield "frame"

    assert list(handler("photo.png", "style.png", "fast-preview", 128, request="req")) == ["frame"]
    assert list(handler(content="photo.png", style="style.png", keep_face=7.5)) == ["frame"]
    first, second = seen
    assert first == (app.Controls(content="photo.png", style="style.png", preset="fast-preview", size=128), "req")
    assert second[0].keep_face == 7.5 and second[0].preset == "auto" and second[1] is None


CASES = [
    ("balanced", {}, None, 1),
    ("balanced", {"style_strength": 6.5, "keep_face": 3.5, "seed": -1, "preserve_colors": True}, None, 1),
    ("fast-preview", {"style_loss": "w2", "optimizer": "adam", "backbone": "vgg16", "steps": 77, "size": 200,
                      "extra_json": '{"tv_weight": 20.5, "style_layers": ["relu1_1", "relu3_1"], "lr": 0.0333}'},
     [0.7, 0.3], 2),
    ("pixar-portrait", {"warp_strength": 0.33, "region_colors": 0.1, "skin_smoothing": 0.0, "face_index": 2,
                        "init": "blend", "match_style_colors": True, "cartoon": 0.25, "flatten": 0.5,
                        "background": "photo", "skin_tone": 0.75, "hair_tone": 0.6}, None, 1),
]


@pytest.mark.parametrize("preset, controls, blend, n_styles", CASES)
def test_the_shown_command_parses_back_to_the_same_config(preset, controls, blend, n_styles):
    config = app.build_config(app.Controls("photo.png", "style.png", preset=preset, **controls), blend)
    command = app.cli_command(config, n_styles, preset)
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "style_core"]
    args = build_parser().parse_args(argv[3:])
    assert len(args.styles) == n_styles
    assert config_from_args(args) == config, command


def test_an_unset_setting_on_the_command_line():
    args = build_parser().parse_args(["c.png", "s.png", "--seed", "none", "--style-blend", "none", "--size", "64"])
    config = config_from_args(args)
    assert config.seed is None and config.style_blend is None and config.size == 64
    with pytest.raises(SystemExit):
        build_parser().parse_args(["c.png", "s.png", "--size", "none"])  # not an optional setting


def _blocks_with(*events):
    return SimpleNamespace(_queue=SimpleNamespace(active_jobs=[None, list(events)]))


def test_the_queue_check_follows_the_running_event():
    event = SimpleNamespace(_id="e1", alive=True)
    blocks = _blocks_with(SimpleNamespace(_id="other", alive=True), event)
    released = queue_watch.released_check(blocks, "e1")
    assert released() is False
    event.alive = False  # gradio cancelled it (client's cancel, closed page)
    assert released() is True
    event.alive = True
    blocks._queue.active_jobs[1] = None  # gradio handed the slot on
    assert released() is True
    assert queue_watch.released_check(blocks, None)() is False  # not inside a queued event


def test_missing_gradio_internals_are_said_once_in_the_log(monkeypatch, caplog):
    monkeypatch.setattr(queue_watch, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="style_studio"):
        for _ in range(3):
            assert queue_watch.released_check(SimpleNamespace(), "e1")() is False  # no _queue
        assert queue_watch.released_check(_blocks_with(SimpleNamespace(_id="e1")), "e1")() is False  # no alive
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("gradio internals not found" in w for w in warnings), warnings


def test_this_gradio_has_the_internals_the_check_reads():
    import gradio as gr
    from gradio.context import LocalContext
    from gradio.queueing import Event

    assert hasattr(LocalContext, "blocks") and hasattr(LocalContext, "event_id")
    with gr.Blocks() as demo:
        gr.Markdown("x")
    assert isinstance(demo._queue.active_jobs, list)
    names = {f.name for f in dataclasses.fields(Event)} if dataclasses.is_dataclass(Event) else set()
    source = Event.__init__.__code__.co_names + tuple(names)
    assert "_id" in source and "alive" in source
