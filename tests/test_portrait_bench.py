"""benchmarks/portrait.py's face_x and framed_x (style_x on the middle of look.py's face crop, alone or in the
style face's frame) with the shared look.py: zero for the style picture itself, one for the photo, and blind to what
lies outside the face's middle. Nothing is painted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_core.images import load_image

pytestmark = pytest.mark.integration
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "portrait.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("portrait_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not (module.SHARED / "tools" / "look.py").exists():
        pytest.skip("the shared look.py is not beside the checkout")
    return module


@pytest.fixture(scope="module")
def look(bench):
    return bench.load_look()


@pytest.fixture(scope="module")
def brad_and_drawing(bench, look, data_dir):
    """brad_pitt and the drawing, and their look references: the pair every test here measures."""
    photo, style = load_image(data_dir / "brad_pitt.jpg"), load_image(data_dir / "Cartoons_00003_01.jpg")
    return photo, style, bench.measure_reference(look, photo), bench.measure_reference(look, style)


@pytest.mark.parametrize("number", ["face_x", "framed_x"])
def test_zero_for_the_style_and_one_for_the_photo(bench, look, brad_and_drawing, number):
    photo, style, p, s = brad_and_drawing
    assert bench.measure(look, p, s, photo)[number] == 1.0
    assert bench.measure(look, p, s, style)[number] == 0.0


def test_face_x_and_framed_x_ignore_the_surround_that_style_x_counts(bench, look, brad_and_drawing):
    """The photo with everything outside its face's middle painted over in one colour: look.py's style_x moves,
    face_x (the middle alone) and framed_x (which takes that ring from the style) stay where the photo's own are."""
    photo, _, p, s = brad_and_drawing
    rgb = np.asarray(photo.convert("RGB"))
    points = bench.face_landmarks(look, photo)
    half = 0.7 * (points[16, 0] - points[0, 0])  # look.py's crop: 1.4 jaw widths around the nose
    cx, cy = points[27:36].mean(0)
    covered = rgb.copy()
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    surround = (np.abs(xx - cx) > 0.55 * half) | (np.abs(yy - cy) > 0.55 * half)
    covered[surround] = (40, 30, 25)
    numbers = bench.measure(look, p, s, Image.fromarray(covered))
    assert numbers["identity"] is not None and numbers["identity"] < 0.6  # the same face, found again
    assert abs(numbers["style_x"] - 1.0) > 0.1
    assert numbers["face_x"] == pytest.approx(1.0, abs=0.05)
    assert numbers["framed_x"] == pytest.approx(1.0, abs=0.05)
    assert bench.short(numbers).startswith(f"id{numbers['identity']} ")  # each number labelled apart
