"""Start `app.py` in its own process for the tests and benchmarks that drive it over HTTP (gradio_client, a
browser, raw requests). Used by the app fixtures and by benchmarks/soak.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's, never a downloaded browser


def launch_chromium(playwright):
    """Headless Debian Chromium for the browser tests, quiet (no sandbox, GPU, updates or first-run pages)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--no-first-run"],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    url: str
    proc: subprocess.Popen
    log: Path

    def rss_bytes(self) -> int:
        """The app process's resident memory, from /proc (Linux)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")


@contextmanager
def running_app(log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ("--preset", "fast-preview"),
                timeout: float = 180) -> Iterator[RunningApp]:
    """`python app.py ARGS` on 127.0.0.1 and a free port, its output in `log`; stopped on exit."""
    port = free_port()
    full_env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
                "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"the app exited: {log.read_text()[-2000:]}") from None
                if time.time() > deadline:
                    raise RuntimeError(f"the app did not start in {timeout:.0f} s") from None
                time.sleep(0.5)
        yield RunningApp(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
