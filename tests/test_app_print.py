"""Print sizes in the app: the server's memory cap holds whatever a request says, big frames are shown scaled down
while the download keeps every pixel, and the time estimate comes from the guard's plan and the measured speed."""

from __future__ import annotations

from dataclasses import fields

from PIL import Image

import app
from style_core.timing import StepPrice, StepPrices


def test_the_servers_memory_cap_holds_whatever_the_request_says(monkeypatch):
    monkeypatch.setattr(app, "MAX_MEMORY_GB", 6.0)
    controls = app.Controls(content="p.png", style="s.png", preset="balanced")
    assert app.build_config(controls).max_memory_gb == 6.0
    lower = app.Controls(content="p.png", style="s.png", preset="balanced", extra_json='{"max_memory_gb": 2}')
    assert app.build_config(lower).max_memory_gb == 2.0
    higher = app.Controls(content="p.png", style="s.png", preset="balanced", extra_json='{"max_memory_gb": 60}')
    assert app.build_config(higher).max_memory_gb == 6.0
    monkeypatch.setattr(app, "MAX_MEMORY_GB", None)
    assert app.build_config(controls).max_memory_gb is None


def test_print_frames_are_shown_scaled_down():
    big = Image.new("RGB", (4096, 3072))
    assert app.display(big).size == (1024, 768)
    small = Image.new("RGB", (384, 300))
    assert app.display(small) is small


def test_a_print_size_sets_the_output_size():
    assert app.print_size_chosen("4096")["value"] == 4096
    assert app.print_size_chosen("off") == app.gr.skip()


def test_the_time_estimate_uses_the_measured_speed_and_the_guards_plan(monkeypatch, tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (300, 400)).save(photo)
    monkeypatch.setattr(app, "MAX_SIZE", 4096)
    monkeypatch.setattr(app, "_speed", {})
    controls = app.Controls(content=str(photo), style=str(photo), size=4096)
    assert "measuring" in app.time_estimate(controls)
    monkeypatch.setattr(app, "_speed", {"prices": StepPrices(StepPrice(0.0, 10.0))})
    monkeypatch.setattr(app, "plan_memory", lambda content, config: _Plan(config))
    text = app.time_estimate(controls)
    assert text.startswith("**4096 px: about") and "min on this server" in text and "tile by tile" in text
    small = app.time_estimate(app.Controls(content=str(photo), style=str(photo), size=256))
    assert " s on this server" in small and "tile" not in small


def test_auto_is_estimated_as_the_run_will_decide_it(monkeypatch, tmp_path):
    """With "auto" and a face in both pictures the estimate prices a portrait run (its paintings, guided), as the run
    will make it, not a plain one at the output size (which said 12 s for a 71 s portrait run)."""
    photo = tmp_path / "p.png"
    Image.new("RGB", (300, 400)).save(photo)
    monkeypatch.setattr(app, "_speed", {"prices": StepPrices(StepPrice(0.0, 10.0))})
    monkeypatch.setattr(app, "resolve_preset", lambda name, content, style: ("pixar-portrait", "faces in both"))
    priced = []

    def estimate(content, style, config, prices):
        priced.append((style, config.portrait))
        return 75.0

    monkeypatch.setattr(app, "estimate_run_seconds", estimate)
    text = app.time_estimate(app.Controls(content=str(photo), style=str(photo), size=384))
    assert priced == [(str(photo), True)]
    assert text.startswith("**384 px in portrait mode: about 75 s on this server**")
    monkeypatch.setattr(app, "resolve_preset", lambda name, content, style: ("balanced", "no face"))
    assert "portrait" not in app.time_estimate(app.Controls(content=str(photo), style=str(photo), size=384))
    assert priced[-1] == (str(photo), False)


def test_durations_are_said_as_a_person_says_them():
    assert [app.duration_words(s) for s in (44.6, 89, 95, 121, 599, 1500)] == [
        "45 s", "89 s", "1 min 35 s", "2 min", "10 min", "25 min"
    ]


class _Plan:
    def __init__(self, config):
        self.config, self.note, self.estimate = config, "", 3 * 2**30


def test_the_estimate_fills_in_once_the_speed_is_measured(monkeypatch, tmp_path):
    """A page whose photo came in while the speed was being measured gets its estimate when the measurement ends
    (no control has to change), and the polling stops then, or when the engine failed to start."""
    photo = tmp_path / "p.png"
    Image.new("RGB", (300, 400)).save(photo)
    controls = app.Controls(content=str(photo), style=str(photo), size=256)
    values = [getattr(controls, f.name) for f in fields(app.Controls)]
    monkeypatch.setattr(app, "_speed", {})
    monkeypatch.setattr(app, "_weights_status", {"text": "Loading the VGG weights…"})
    shown, timer = app.estimate_once_measured(*values)
    assert shown == app.gr.skip() and timer.active  # still measuring: the page keeps its text, the timer goes on
    monkeypatch.setattr(app, "_speed", {"prices": StepPrices(StepPrice(0.0, 10.0))})
    shown, timer = app.estimate_once_measured(*values)
    assert shown.startswith("**256 px: about") and not timer.active
    monkeypatch.setattr(app, "_speed", {})
    monkeypatch.setattr(app, "_weights_status", {"text": "Weights could not be loaded: no file"})
    shown, timer = app.estimate_once_measured(*values)
    assert "not available" in shown and not timer.active
