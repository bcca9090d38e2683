"""Every hostile picture through the engine and the CLI: a one-line refusal in plain words, or a sane picture."""

from __future__ import annotations

import subprocess
import sys

import pytest

from style_core import ImageError, StyleConfig, load_image, stylize

from .hostile import CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_loader_and_engine(name, tmp_path, tiny_net, style_img):
    data, expected = CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    cfg = StyleConfig(size=32, start_size=32, steps=2, checkpoint_every=1, device="cpu")
    if expected.startswith("error:"):
        with pytest.raises(ImageError, match=expected[6:]):
            load_image(path)
        with pytest.raises(ImageError):
            next(stylize(path, style_img, cfg, backbone=tiny_net))
        with pytest.raises(ImageError):  # as a style picture too
            next(stylize(style_img, path, cfg, backbone=tiny_net))
    else:
        img = load_image(path)
        assert img.mode == "RGB" and min(img.size) >= 8
        final = list(stylize(path, style_img, cfg, backbone=tiny_net))[-1]
        assert final.is_final and max(final.image.size) == 32


def test_exif_orientations_rotate_to_upright(tmp_path):
    for o in range(2, 9):
        size = load_image(CASES[f"exif_{o}.jpg"][0]).size
        assert size == ((40, 80) if o >= 5 else (80, 40)), (o, size)


def test_sixteen_bit_and_transparency_give_sane_pixels():
    assert 140 < load_image(CASES["sixteen_bit.png"][0]).getpixel((0, 0))[0] < 170  # 40000/65535*255 = 156
    assert load_image(CASES["rgba_border.png"][0]).getpixel((1, 1)) == (255, 255, 255)
    assert load_image(CASES["animated.webp"][0]).getpixel((5, 5))[0] > 200  # the first (red) frame


@pytest.mark.parametrize("name", [n for n, (_, e) in sorted(CASES.items()) if e.startswith("error:")])
def test_cli_refuses_in_one_line(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(CASES[name][0])
    good = tmp_path / "good.png"
    good.write_bytes(CASES["grayscale.png"][0])
    done = subprocess.run([sys.executable, "-m", "style_core", str(path), str(good), "-o", str(tmp_path / "o.png"),
                           "--size", "32", "--steps", "1", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error:") and "Traceback" not in done.stderr
