"""Every hostile picture through the engine and the CLI: a one-line refusal in plain words, or a sane picture;
and an upload over the app's size limit."""

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


@pytest.fixture(scope="module")
def small_limit_app(tmp_path_factory):
    from .app_server import running_app

    try:
        with running_app(tmp_path_factory.mktemp("app") / "app.log", env={"STYLE_STUDIO_MAX_FILE_MB": "1"}) as app:
            yield app
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.integration
def test_an_upload_over_the_size_limit_is_refused_and_the_app_keeps_working(small_limit_app, tmp_path):
    import httpx
    import numpy as np
    from gradio_client import Client, handle_file
    from PIL import Image

    big = tmp_path / "big.png"  # noise does not compress: about 2 MB, over the app's 1 MB limit
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (820, 860, 3), dtype=np.uint8)).save(big)
    assert 1.8 * 2**20 < big.stat().st_size < 2.5 * 2**20
    good = tmp_path / "good.png"
    good.write_bytes(CASES["grayscale.png"][0])
    client = Client(small_limit_app.url, verbose=False)

    # The server refuses it: 413 with a one-line plain-text reason.
    with open(big, "rb") as f:
        response = httpx.post(client.upload_url, files=[("files", ("big.png", f, "image/png"))], timeout=30)
    print(f"\nraw upload of {big.stat().st_size} bytes: HTTP {response.status_code}: {response.text!r}")
    assert response.status_code == 413, (response.status_code, response.text)
    assert "maximum allowed size" in response.text and "\n" not in response.text.strip()
    assert "Traceback" not in response.text and len(response.text) < 200

    # gradio_client reads the limit from the app's config and refuses before sending.
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes") as info:
        client.predict(content=handle_file(str(big)), style=handle_file(str(good)), size=64, api_name="/stylize")
    print(f"gradio_client: {info.value}")

    # The app keeps working.
    result = client.predict(content=handle_file(str(good)), style=handle_file(str(good)), preset="fast-preview",
                            size=64, steps=5, api_name="/stylize")
    assert Image.open(result[0]).size[0] == 64
