"""A short soak: twelve jobs in a row against one app; its temporary files are cleaned up and its memory stays put.
The full 50-job version is `python benchmarks/soak.py`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_twelve_jobs_leave_no_files_behind_and_memory_stays_put():
    from statistics import median

    from benchmarks.soak import soak

    report = soak(jobs=12, warmup=6, size=64, steps=5, cache_s=10, results_keep=3, settle_s=30)
    print(f"\nRSS after {report['warmup']} jobs {report['rss_mb_after_warmup']} MB, after {report['jobs']} "
          f"{report['rss_mb_after_all']} MB ({report['rss_growth_pct']:+.2f} %); files: before "
          f"{report['counts_before']}, after the jobs {report['counts_after_all']}, after "
          f"{report['settled_after_s']} s idle {report['counts_after_settle']}")
    assert report["tracebacks_in_log"] == 0
    assert report["counts_after_all"]["results_files"] <= 3  # the app keeps only the newest RESULTS_KEEP
    # gradio's cache cleaner (delete_cache, 10 s here) removed every file the jobs left
    assert report["counts_after_settle"]["gradio_files"] <= report["counts_before"]["gradio_files"]
    # A gross leak; benchmarks/soak.py measures against the 10 % target. The app's RSS climbs over its first six or
    # so jobs, then swings by +-12 % from job to job (an AMD EPYC host, 24 jobs: 1670-2120 MB from the 7th on),
    # so the last three jobs' median is held against the warm-up's last three, not one sample against one.
    rss = report["rss_mb_per_job"]
    assert median(rss[-3:]) < 1.25 * median(rss[report["warmup"] - 3:report["warmup"]])
