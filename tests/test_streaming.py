"""A run's frames from a painting thread (`FramesAhead`): every scale and final frame, the newest progress frame, the
run's errors and its cleanup, and the painting going on while the caller handles a frame."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from style_core import stylize
from style_core.frames import Frame, StylizeError
from style_core.streaming import FramesAhead

PICTURE = Image.new("RGB", (4, 4))


def _frame(step: int, event: str = "progress") -> Frame:
    return Frame(PICTURE, step, 10, 4, 0, 1, {}, 0.0, event == "final", event)


def _run(events: list[str], log: list[str], pause: float = 0.0, fail: Exception | None = None):
    try:
        for step, event in enumerate(events, start=1):
            time.sleep(pause)
            log.append(f"painted {step}")
            yield _frame(step, event)
        if fail is not None:
            raise fail
    finally:
        log.append("cleaned up")


def test_a_caller_that_keeps_up_gets_every_frame_in_order():
    events = ["progress", "progress", "scale", "progress", "final"]
    frames = []
    for frame in FramesAhead(_run(events, [], pause=0.01)):
        frames.append(frame)
    assert [(f.step, f.event) for f in frames] == list(enumerate(events, start=1))


def test_a_slow_caller_skips_overtaken_progress_frames_but_never_a_scale_or_the_final_frame():
    events = ["progress"] * 5 + ["scale"] + ["progress"] * 5 + ["final"]
    ahead = FramesAhead(_run(events, []))
    time.sleep(0.2)  # the run is over before the caller looks at anything
    frames = list(ahead)
    assert [(f.step, f.event) for f in frames] == [(6, "scale"), (12, "final")]


def test_the_run_paints_on_while_the_caller_handles_a_frame():
    log: list[str] = []
    ahead = FramesAhead(_run(["progress", "progress", "final"], log, pause=0.05))
    first = next(ahead)
    log.append(f"caller has {first.step}")
    time.sleep(0.15)  # handling the frame (encoding a preview) takes a while
    assert "painted 2" in log and "painted 3" in log, "the run stood still while the caller worked"
    rest = list(ahead)
    assert rest[-1].is_final


def test_an_error_in_the_run_reaches_the_caller_after_the_frames_before_it_and_the_run_is_cleaned_up():
    log: list[str] = []
    ahead = FramesAhead(_run(["scale", "scale"], log, fail=StylizeError("out of pictures")))
    got = []
    with pytest.raises(StylizeError, match="out of pictures"):
        for frame in ahead:
            got.append(frame.step)
    assert got == [1, 2] and log[-1] == "cleaned up"


def test_close_ends_the_run_and_waits_for_its_cleanup():
    log: list[str] = []
    ahead = FramesAhead(_run(["progress"] * 1000, log, pause=0.002))
    next(ahead)
    ahead.close()
    assert log[-1] == "cleaned up" and len([m for m in log if m.startswith("painted")]) < 1000
    assert not any(t.name == "style-core-run" for t in threading.enumerate())


def test_a_real_run_through_the_thread_ends_on_the_same_picture(tiny_net, tiny_config, content_img, style_img):
    direct = list(stylize(content_img, style_img, tiny_config, backbone=tiny_net))
    ahead = list(FramesAhead(stylize(content_img, style_img, tiny_config, backbone=tiny_net)))
    assert ahead[-1].is_final and ahead[-1].step == direct[-1].step
    assert np.array_equal(np.asarray(ahead[-1].image), np.asarray(direct[-1].image))

