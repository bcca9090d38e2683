"""A short soak: twenty-four jobs in a row against one app; its temporary files are cleaned up and its memory stays put.
The full 50-job version is `python benchmarks/soak.py`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_two_dozen_jobs_leave_no_files_behind_and_memory_stays_put():
    from statistics import median

    from benchmarks.soak import soak

    report = soak(jobs=24, warmup=12, size=64, steps=5, cache_s=10, results_keep=3, settle_s=30)
    print(f"\nRSS after {report['warmup']} jobs {report['rss_mb_after_warmup']} MB, after {report['jobs']} "
          f"{report['rss_mb_after_all']} MB ({report['rss_growth_pct']:+.2f} %); files: before "
          f"{report['counts_before']}, after the jobs {report['counts_after_all']}, after "
          f"{report['settled_after_s']} s idle {report['counts_after_settle']}")
    assert report["tracebacks_in_log"] == 0
    assert report["counts_after_all"]["results_files"] <= 3  # the app keeps only the newest RESULTS_KEEP
    # gradio's cache cleaner (delete_cache, 10 s here) removed every file the jobs left
    assert report["counts_after_settle"]["gradio_files"] <= report["counts_before"]["gradio_files"]
    # A gross leak; benchmarks/soak.py measures against the 10 % target. The app's RSS climbs over its first six or
    # so jobs, then swings by +-12 % from job to job with no trend (an AMD EPYC host, 24 jobs: 1500-2010 MB from the
    # 7th on). Jobs 4-6 against 10-12 compared a climb with a plateau and failed one run in two on that host
    # (1406 -> 1771 MB), so the plateau's first six jobs (7-12) are held against the last six (19-24), medians.
    rss = report["rss_mb_per_job"]
    warm = report["warmup"]
    assert median(rss[-6:]) < 1.2 * median(rss[warm - 6:warm])
