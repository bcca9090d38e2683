"""The allocator settings: within a run, a big block freed by one step is reused by the next, without page faults on
fresh memory; after it, big blocks go back to the OS; `STYLE_KEEP_FREED_MEMORY=0` leaves glibc as it ships."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from style_core import allocator

PROBE = """
import json, resource, torch
import style_core
from style_core import allocator

def fill():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MiB: over glibc's largest mmap threshold
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

with allocator.freed_memory_kept() as applied:
    faults = [fill() for _ in range(4)]
print(json.dumps({"applied": applied, "faults": faults, "after": [fill(), fill()]}))
"""


def _probe(keep: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={"STYLE_KEEP_FREED_MEMORY": keep, "PATH": "", "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
def test_a_freed_big_block_is_reused_without_page_faults_and_the_switch_turns_it_off():
    kept, shipped = _probe("1"), _probe("0")
    assert kept["applied"] and not shipped["applied"]
    pages = (64 << 20) // 4096
    # the first fill faults its pages in either way; as glibc ships, every later one again (the block is unmapped
    # when freed); kept, the heap settles within a fill or two (a small block above the first may split it once)
    assert min(shipped["faults"][1:]) > pages // 2
    assert kept["faults"][-1] < pages // 10 and kept["faults"][-2] < pages // 10
    # after the run, big blocks go back to the OS again: an idle app does not hold a run's peak
    assert min(kept["after"]) > pages // 2
