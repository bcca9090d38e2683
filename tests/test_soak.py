"""A short soak: eight jobs in a row against one app; its temporary files are cleaned up and its memory stays put.
The full 50-job version is `python benchmarks/soak.py`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_eight_jobs_leave_no_files_behind_and_memory_stays_put():
    from benchmarks.soak import soak

    report = soak(jobs=8, warmup=3, size=64, steps=5, cache_s=10, results_keep=3, settle_s=30)
    print(f"\nRSS after {report['warmup']} jobs {report['rss_mb_after_warmup']} MB, after {report['jobs']} "
          f"{report['rss_mb_after_all']} MB ({report['rss_growth_pct']:+.2f} %); files: before "
          f"{report['counts_before']}, after the jobs {report['counts_after_all']}, after "
          f"{report['settled_after_s']} s idle {report['counts_after_settle']}")
    assert report["tracebacks_in_log"] == 0
    assert report["counts_after_all"]["results_files"] <= 3  # the app keeps only the newest RESULTS_KEEP
    # gradio's cache cleaner (delete_cache, 10 s here) removed every file the jobs left
    assert report["counts_after_settle"]["gradio_files"] <= report["counts_before"]["gradio_files"]
    assert report["rss_growth_pct"] < 25  # a gross leak; benchmarks/soak.py measures against the 10 % target
