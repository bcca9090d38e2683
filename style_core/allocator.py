"""Keep freed memory for the next step: glibc's malloc, told not to hand big blocks back to the OS mid-run.

Every optimizer step allocates and frees the same large CPU buffers again: feature maps, the portrait's gathered
region pixels, their gradients (at 512 px the first layers' are 30-90 MB each). glibc serves a block over 32 MB
(its largest mmap threshold) from mmap and unmaps it when it is freed, so each step writes into fresh pages and
pays a page fault for every 4 KiB of them. Measured on a 2-core AMD EPYC: a bf16-to-float32 copy of 332004 x 64
values took 25 ms into a new buffer and 3 ms into a reused one, and the 512 px portrait took 60.3 s in the main
thread and 58.5 s in a worker thread as glibc ships, 54.8 s and 52.5 s with these settings, for the same pictures.

The settings, while a run is under way (`freed_memory_kept`): no mmap for big blocks (they come from the heap and stay
there when freed) and a high trim threshold (the heap's free top is kept). For the process, one arena
(`share_one_heap`): worker threads, as the app's, use that heap too instead of their own 64 MB heaps, from which a
larger block cannot come. When the last run ends, the free memory goes back to the OS, so an idle app does not hold
a large run's peak (its RSS over a soak of small jobs grew as much as without these settings).

glibc only (Linux); elsewhere, or with `STYLE_KEEP_FREED_MEMORY=0`, nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8
RUN_TRIM_THRESHOLD = 1 << 30  # in a run: keep the heap's free top
IDLE = ((M_MMAP_MAX, 65536), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 64 << 20))  # glibc's own, grown
_lock = threading.Lock()
_runs = 0


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (musl has no mallopt) and the switch is not off."""
    if not sys.platform.startswith("linux") or os.environ.get("STYLE_KEEP_FREED_MEMORY", "1") == "0":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


@lru_cache(maxsize=1)
def share_one_heap() -> bool:
    """One arena for every thread (call it before worker threads exist: arenas made before stay); True if set."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, 1) == 1


def _set(settings: tuple[tuple[int, int], ...]) -> bool:
    libc = _glibc()
    return libc is not None and all(libc.mallopt(option, value) == 1 for option, value in settings)


@contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Within: big blocks come from the heap and stay there when freed. After the last run in the process ends, the
    free memory goes back to the OS and glibc's limits return to the ones its own dynamic thresholds grow to, so
    an idle app does not hold a large run's peak. Yields whether the settings apply here."""
    global _runs
    with _lock:
        _runs += 1
        applied = _set(((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, RUN_TRIM_THRESHOLD)))
    try:
        yield applied
    finally:
        with _lock:
            _runs -= 1
            if applied and _runs == 0:
                _set(IDLE)
                _glibc().malloc_trim(0)
