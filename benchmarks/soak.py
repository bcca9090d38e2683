"""Soak: many short jobs in a row against one app (gradio_client), watching its memory and its temporary files.

The app runs in its own process with a fresh TMPDIR, so gradio's cache (TMPDIR/gradio: uploads, streamed frames,
outputs) and the app's results folder (TMPDIR/style-studio-results) hold only this run's files. Each job paints a
different generated picture (so no upload or output is shared between jobs: the worst case for piling up).
Reports the app's resident memory (RSS, from /proc) after the warm-up jobs and after all of them, and the file
counts before, after the warm-up, after all jobs, and after idling (at most `--settle` seconds) until the cache
cleaner has removed every file the jobs left (it runs every min(600, cache_s) s and removes files older than
cache_s: `--cache-s 10` shows it at work within a short run).

    python benchmarks/soak.py [--jobs 50] [--warmup 5] [--size 64] [--steps 10] [--cache-s 3600] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.app_server import running_app

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _picture(path: Path, seed: int, size: tuple[int, int] = (96, 72)) -> Path:
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1)[..., rng.permutation(3)]
    Image.fromarray(((base * 0.7 + rng.random((h, w, 3)) * 0.3) * 255).astype(np.uint8)).save(path)
    return path


def count_files(folder: Path) -> tuple[int, int]:
    """(files, folders) under `folder`; gradio keeps each cached file in a folder of its own."""
    if not folder.exists():
        return 0, 0
    entries = list(folder.rglob("*"))
    return sum(e.is_file() for e in entries), sum(e.is_dir() for e in entries)


def soak(jobs: int = 50, warmup: int = 5, size: int = 64, steps: int = 10, cache_s: int | None = None,
         results_keep: int | None = None, settle_s: float = 0.0, log=print) -> dict:
    """Run `jobs` jobs (the first `warmup` of them a warm-up) against a fresh app; the measurements as a dict."""
    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="style-soak-"))
    try:
        tmp = work / "tmp"
        tmp.mkdir()
        gradio_dir, results_dir = tmp / "gradio", tmp / "style-studio-results"
        env = {"TMPDIR": str(tmp), "GRADIO_TEMP_DIR": str(gradio_dir)}
        if cache_s is not None:
            env["STYLE_STUDIO_CACHE_S"] = str(cache_s)
        if results_keep is not None:
            env["STYLE_STUDIO_RESULTS_KEEP"] = str(results_keep)
        style_path = DATA / "starry_night.jpg"
        if not style_path.exists():
            style_path = _picture(work / "style.png", 10_000)
        with running_app(work / "app.log", env=env) as app:
            client = Client(app.url, verbose=False, download_files=str(work / "downloads"))
            style = handle_file(str(style_path))

            def counts() -> dict:
                files, folders = count_files(gradio_dir)
                return {"gradio_files": files, "gradio_folders": folders, "results_files": count_files(results_dir)[0]}

            report: dict = {"jobs": jobs, "warmup": warmup, "size": size, "steps": steps, "cache_s": cache_s,
                            "counts_before": counts(), "rss_mb_per_job": [], "job_s": []}
            peak_files = 0
            for i in range(jobs):
                content = _picture(work / f"content_{i}.png", i)
                t0 = time.perf_counter()
                result = client.predict(content=handle_file(str(content)), style=style, preset="fast-preview",
                                        size=size, steps=steps, api_name="/stylize")
                report["job_s"].append(round(time.perf_counter() - t0, 2))
                assert Path(result[6]).exists(), "no PNG came back"
                content.unlink()
                report["rss_mb_per_job"].append(round(app.rss_bytes() / 2**20, 1))
                peak_files = max(peak_files, counts()["gradio_files"])
                if i + 1 == warmup:
                    time.sleep(1.0)
                    report["rss_mb_after_warmup"] = round(app.rss_bytes() / 2**20, 1)
                    report["counts_after_warmup"] = counts()
                if (i + 1) % 10 == 0:
                    log(f"  {i + 1} jobs, RSS {report['rss_mb_per_job'][-1]} MB, {counts()}")
            time.sleep(1.0)
            report["rss_mb_after_all"] = round(app.rss_bytes() / 2**20, 1)
            report["counts_after_all"] = counts()
            report["peak_gradio_files"] = peak_files
            if settle_s > 0:  # idle until the cleaner has removed every file the jobs left, or settle_s is over
                t0 = time.perf_counter()
                while (counts()["gradio_files"] > report["counts_before"]["gradio_files"]
                       and time.perf_counter() - t0 < settle_s):
                    time.sleep(0.5)
                report["counts_after_settle"] = counts()
                report["settled_after_s"] = round(time.perf_counter() - t0, 1)
            report["rss_growth_pct"] = round(
                100 * (report["rss_mb_after_all"] / report["rss_mb_after_warmup"] - 1), 2)
            report["mean_job_s"] = round(sum(report["job_s"]) / len(report["job_s"]), 2)
            log_text = app.log.read_text()
            report["tracebacks_in_log"] = log_text.count("Traceback")
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cache-s", type=int, default=None, help="STYLE_STUDIO_CACHE_S for the app (default 3600)")
    parser.add_argument("--results-keep", type=int, default=None, help="STYLE_STUDIO_RESULTS_KEEP (default 32)")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="at most this many seconds to idle at the end, waiting for the cache cleaner")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = soak(args.jobs, args.warmup, args.size, args.steps, args.cache_s, args.results_keep, args.settle,
                  log=(lambda *a: print(*a, file=sys.stderr)) if args.json else print)
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['jobs']} jobs ({report['size']} px, fast-preview, {report['steps']} steps), "
          f"{report['mean_job_s']} s each on average")
    print(f"RSS after {report['warmup']} warm-up jobs: {report['rss_mb_after_warmup']} MB; after all: "
          f"{report['rss_mb_after_all']} MB; growth {report['rss_growth_pct']:+.2f} % (target < 10 %)")
    for key in ("counts_before", "counts_after_warmup", "counts_after_all", "counts_after_settle"):
        if key in report:
            print(f"{key.replace('_', ' ')}: {report[key]}")
    if "settled_after_s" in report:
        print(f"(counted again after {report['settled_after_s']} s idle, --cache-s {report['cache_s']})")
    print(f"peak files in gradio's cache: {report['peak_gradio_files']}; tracebacks in the app log: "
          f"{report['tracebacks_in_log']}")


if __name__ == "__main__":
    main()
