"""Print sizes in the app: the server's memory cap holds whatever a request says, big frames are shown scaled down
while the download keeps every pixel, and the time estimate comes from the guard's plan and the measured speed."""

from __future__ import annotations

import re
from dataclasses import fields

from PIL import Image

import app
from style_core import ConfigError, StyleConfig
from style_core.frames import Frame
from style_core.timing import Painting, StepPrice, StepPrices


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


def test_the_progress_bar_runs_on_across_a_portrait_runs_paintings(monkeypatch):
    """A small face: the whole picture, then the face's crop, whose steps count from 0 again. The bar grows over the
    whole run and says which painting is under way; the final frame says done. A picture whose paintings cannot be
    told is one painting (the bar never stops a run)."""
    whole = StyleConfig(size=384, steps=40, device="cpu")
    face = whole.replace(size=560, face_index=0)
    paintings = [(Painting(whole, (384, 384)), 20.0), (Painting(face, (560, 560), True), 60.0)]
    monkeypatch.setattr(app, "run_paintings", lambda content, style, config, prices: paintings)
    progress = app.run_progress(Image.new("RGB", (384, 384)), "s.png", whole)
    widths, texts = [], []
    for size, painting in ((384, "the whole picture"), (560, "the face")):
        for step in range(0, 41, 10):
            frame = Frame(Image.new("RGB", (8, 8)), step, 40, size, 0, 3, {}, 1.0, False, painting=painting)
            html = app.progress_html(frame, progress, elapsed=float(len(widths) + 1))
            widths.append(float(re.search(r"width:([0-9.]+)%", html).group(1)))
            texts.append(html)
    assert widths == sorted(widths) and widths[4] == 25.0 and widths[-1] == 100.0
    assert "Painting 1/2: the whole picture" in texts[0] and "Painting 2/2: the face" in texts[5]
    share = widths[7] / 100  # 8 s into the run
    assert f"about {8 * (1 - share) / share:.0f} s left" in texts[7]  # at the pace so far, for the whole run
    final = Frame(Image.new("RGB", (8, 8)), 40, 40, 560, 2, 3, {}, 1.0, True, event="final")
    done = app.progress_html(final, progress, 12.0)
    assert "done" in done and "Painting" not in done and "width:100.0%" in done

    def fails(content, style, config, prices):
        raise ConfigError("no faces to tell")

    monkeypatch.setattr(app, "run_paintings", fails)
    single = app.run_progress(Image.new("RGB", (384, 384)), "s.png", whole)
    assert len(single.paintings) == 1
    plain = Frame(Image.new("RGB", (8, 8)), 10, 40, 384, 0, 3, {}, 1.0, False)
    assert "Painting" not in app.progress_html(plain, single, 1.0)  # one painting: no label
