"""The README's screenshot of the first example: the app in headless Chromium (Debian's, never a downloaded one),
the first example row clicked, Paint, the result; saved to docs/example_toon_portrait.png.

    python docs/screenshot_first_example.py [--size 256]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.app_server import running_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "docs" / "example_toon_portrait.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with running_app(Path("/tmp/style-studio-screenshot.log"), args=()) as app, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(app.url)
        page.get_by_text("Examples (made by this project)").scroll_into_view_if_needed()
        page.locator(".gallery-item, tr.tr-body, button.gallery-item").first.click()
        page.wait_for_timeout(1500)
        size_box = page.locator("#size input[type=number]")
        size_box.fill(str(args.size))
        size_box.press("Enter")
        page.wait_for_timeout(500)
        started = time.time()
        page.locator("#run-btn").click()
        page.wait_for_function(
            "document.querySelector('#identity') && "
            "!document.querySelector('#identity').innerText.includes('(portrait mode only)')",
            timeout=900_000,
        )
        print(f"painted in {time.time() - started:.0f} s")
        print(page.locator("#mode").inner_text())
        print(page.locator("#identity").inner_text())
        page.wait_for_timeout(1000)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
