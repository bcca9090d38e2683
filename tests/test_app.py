"""The app as users meet it: launched on 127.0.0.1 with the real offline weights, driven by gradio_client
and by Playwright in Debian's Chromium."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from .app_server import CHROMIUM, launch_chromium, running_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    try:
        with running_app(tmp_path_factory.mktemp("app") / "app.log") as app:
            yield app.url
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_gradio_client_streams_frames_and_gets_the_asked_size(app_url, data_dir):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    job = client.submit(content=handle_file(str(data_dir / "077417.jpg")),
                        style=handle_file(str(data_dir / "Cartoons_00167_01.jpg")),
                        preset="fast-preview", size=112, api_name="/stylize")
    updates = list(job)
    assert len(updates) >= 4, f"only {len(updates)} updates"  # at least 3 streamed frames before the final
    final = job.result()
    image = Image.open(final[0])
    assert max(image.size) == 112
    png = Image.open(final[6])
    assert png.format == "PNG" and png.size == image.size
    assert final[5]["command"].startswith("python -m style_core")


def test_portrait_mode_shows_the_identity_score(app_url, data_dir):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    final = client.predict(content=handle_file(str(data_dir / "077417.jpg")),
                           style=handle_file(str(data_dir / "Cartoons_00167_01.jpg")),
                           preset="pixar-portrait", size=160, steps=40, api_name="/stylize")
    identity, distance = final[7], final[5]["identity_distance"]
    assert distance is not None and distance < 0.6, distance  # the same person by dlib's threshold
    assert identity == f"**Identity:** same person: {distance:.2f} (below 0.6 means same person)", identity


def test_a_missing_style_is_a_plain_message(app_url, data_dir):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="style picture"):
        client.predict(content=handle_file(str(data_dir / "077417.jpg")), style=None, size=96, api_name="/stylize")


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_browser_paints_live_and_stops(app_url, data_dir):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(app_url)
        page.locator("#content input[type=file]").set_input_files(str(data_dir / "077417.jpg"))
        page.locator("#style input[type=file]").set_input_files(str(data_dir / "Cartoons_00167_01.jpg"))
        size_box = page.locator("#size input[type=number]")
        size_box.fill("128")
        size_box.press("Enter")
        page.wait_for_timeout(500)

        def canvas_src() -> str:
            img = page.locator("#canvas img")
            return img.first.get_attribute("src") if img.count() else ""

        page.locator("#run-btn").click()
        seen: list[str] = []
        deadline = time.time() + 240
        while time.time() < deadline:
            src = canvas_src()
            if src and (not seen or src != seen[-1]):
                seen.append(src)
            if page.locator("#download a, #download .file-preview").count() and len(seen) >= 3:
                break
            page.wait_for_timeout(150)
        assert len(seen) >= 3, f"the canvas changed {len(seen)} times"
        page.screenshot(path=str(ARTIFACTS / "app_result.png"), full_page=True)

        # A second run, stopped: it must end within a second or so and keep its last frame.
        first_result = canvas_src()
        page.locator("#run-btn").click()
        deadline = time.time() + 120
        while canvas_src() == first_result and time.time() < deadline:
            page.wait_for_timeout(100)
        assert canvas_src() != first_result, "the second run showed no frame"
        clicked = time.time()
        page.locator("#stop-btn").click()
        page.wait_for_function("document.querySelector('#progress') && "
                               "document.querySelector('#progress').innerText.includes('done')", timeout=15_000)
        stop_latency = time.time() - clicked
        assert canvas_src(), "the stopped run lost its picture"
        page.screenshot(path=str(ARTIFACTS / "app_stopped.png"), full_page=True)
        (ARTIFACTS / "browser_metrics.txt").write_text(
            f"canvas changes in the first run: {len(seen)}\nstop latency: {stop_latency:.2f} s\n")
        browser.close()
    assert stop_latency < 5, stop_latency


@pytest.mark.parametrize("name", ["zero_byte.jpg", "html.jpg", "truncated.jpg", "bomb.png", "tall_1x3000.png"])
def test_hostile_uploads_get_a_plain_message_and_the_app_keeps_working(app_url, tmp_path, name):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from .hostile import CASES

    path = tmp_path / name
    path.write_bytes(CASES[name][0])
    good = tmp_path / "good.png"
    good.write_bytes(CASES["grayscale.png"][0])
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError) as info:
        client.predict(content=handle_file(str(path)), style=handle_file(str(good)), size=64, api_name="/stylize")
    message = str(info.value)
    assert "Traceback" not in message and len(message) < 400
    # the app still paints afterwards
    result = client.predict(content=handle_file(str(good)), style=handle_file(str(good)), preset="fast-preview",
                            size=64, steps=5, api_name="/stylize")
    assert Image.open(result[0]).size[0] == 64


def test_the_server_does_not_serve_its_files(app_url):
    for path in ("file=/etc/passwd", "gradio_api/file=/etc/passwd", "gradio_api/file=../../../../etc/passwd",
                 "gradio_api/file=%2Fetc%2Fpasswd", "file=app.py", "gradio_api/file=app.py", "../etc/passwd"):
        try:
            body = urllib.request.urlopen(app_url + path, timeout=10).read()
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 403, 404, 405), (path, exc.code)
            continue
        assert b"root:" not in body and b"import gradio" not in body, path
