"""What the worker's allocator frees goes back to the system when it trims."""

from __future__ import annotations

import os
import subprocess
import sys

PROGRAM = """
import os
from stream_app.memory_trim import release_free_memory

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

# 200 MB in 100 KB blocks (under glibc's mmap threshold: they come from its heap), then
# nine in ten freed: what is left pins the heap, as a worker's long-lived data does.
blocks = [bytearray(b"x" * 100_000) for _ in range(2_000)]
kept = blocks[::10]
del blocks
before = rss()
assert release_free_memory()
print(before, rss())
"""


def test_memory_freed_inside_the_heap_goes_back_to_the_system() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        timeout=60,
    )
    before, after = map(int, run.stdout.split())
    assert before - after > 100_000_000, (before, after)  # most of the 180 MB freed
