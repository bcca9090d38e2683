"""Issue #14 through the running app: the auto preset decided by the run (Chromium: upload both pictures and press
Paint at once), and every /stylize parameter sent wrong over the API, each a clear message, the app still serving."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from .app_server import CHROMIUM, launch_chromium, running_app

ARTIFACTS = Path(__file__).resolve().parents[1] / "tests" / "artifacts"
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    try:
        with running_app(tmp_path_factory.mktemp("app") / "app.log", args=()) as app:  # the default page: auto
            yield app.url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_upload_both_and_paint_at_once_runs_portrait_mode(app_url, data_dir):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(app_url)
        size_box = page.locator("#size input[type=number]")
        size_box.fill("112")
        size_box.press("Enter")
        assert page.locator("#preset input").input_value() == "auto"
        page.locator("#content input[type=file]").set_input_files(str(data_dir / "077417.jpg"))
        page.locator("#style input[type=file]").set_input_files(str(data_dir / "Cartoons_00167_01.jpg"))
        page.locator("#run-btn").click()  # at once: no waiting for the upload's face detection
        page.wait_for_function("document.querySelector('#mode') && "
                               "document.querySelector('#mode').innerText.includes('mode (')", timeout=120_000)
        page.wait_for_function("document.querySelector('#identity') && "
                               "!document.querySelector('#identity').innerText.includes('(portrait mode only)')",
                               timeout=600_000)
        mode = page.locator("#mode").inner_text()
        identity = page.locator("#identity").inner_text()
        menu = page.locator("#preset input").input_value()
        page.screenshot(path=str(ARTIFACTS / "app_auto_portrait.png"), full_page=True)
        browser.close()
    assert "portrait mode (pixar-portrait)" in mode, mode
    assert "same person" in identity or "may not read" in identity, identity
    assert menu == "auto", menu  # the menu still says what the user chose; the result says what ran


# (parameter, value, words the one-line message holds)
WRONG_OVER_API = [
    ("size", 8192, "limited to|greater than maximum value 1024"),  # gradio's slider or our check: both one line
    ("size", "abc", "must be a finite number (got 'abc')"),
    ("steps", 100000, "steps must be between|greater than maximum value"),
    ("style_strength", "NaN", "finite number"),  # JSON has no NaN: a client sends it as text
    ("preset", "nope", "unknown preset|not in the list of choices"),
    ("background", "sky", "background must be|not in the list of choices"),  # gradio's radio check: one line
    ("face_index", 1000, "face_index must be between"),
    ("extra_json", '{"size": 8192}', "has its own parameter"),
    ("extra_json", '{"steps": 100000}', "has its own parameter"),
    ("extra_json", '{"weights": "/etc/ssl/certs.h5"}', "server's own flags"),
    ("extra_json", '{"device": "cuda"}', "server's own flags"),
    ("extra_json", '{"nope": 1}', "unknown setting"),
    ("extra_json", "{bad", "not valid JSON"),
]


def test_every_parameter_sent_wrong_over_the_api_gets_a_clear_message(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    good = tmp_path / "good.png"
    Image.new("RGB", (64, 48), (120, 160, 200)).save(good)
    client = Client(app_url, verbose=False)
    base = {"content": handle_file(str(good)), "style": handle_file(str(good)), "preset": "fast-preview", "size": 64,
            "steps": 3}
    unclear = []
    for name, value, words in WRONG_OVER_API:
        with pytest.raises(AppError) as info:
            client.predict(**{**base, name: value}, api_name="/stylize")
        message = str(info.value)
        print(f"{name}={value!r}: {message}")
        clear = any(w in message for w in words.split("|")) and "\n" not in message.strip()
        if not clear or "Traceback" in message or "upstream" in message or len(message) > 300:
            unclear.append((name, value, message))
    assert not unclear, unclear
    # A picture named by a server path, not uploaded: refused, nothing read.
    with pytest.raises(Exception) as info:
        client.predict(**{**base, "content": {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}},
                       api_name="/stylize")
    assert "root:" not in str(info.value)
    started = time.time()
    result = client.predict(**base, api_name="/stylize")  # still serving
    assert Image.open(result[0]).size[0] == 64 and time.time() - started < 120
