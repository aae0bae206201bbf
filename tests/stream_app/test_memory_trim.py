"""What the worker's allocator frees goes back to the system when it trims."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from stream_app import memory_trim

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


def test_the_worker_trims_on_another_thread_while_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A trim takes a tenth of a second or more with a large heap: not on the event loop."""
    trimmed_on: list[int] = []
    ticks = 0

    def slow_trim(pad: int) -> int:
        trimmed_on.append(threading.get_ident())
        time.sleep(0.3)
        return 1

    monkeypatch.setattr(memory_trim, "_malloc_trim", lambda: slow_trim)

    async def main() -> bool:
        nonlocal ticks
        trim = asyncio.create_task(memory_trim.release_free_memory_off_loop())
        while not trim.done():  # bounded by the trim's 0.3 s
            await asyncio.sleep(0.01)
            ticks += 1
        return await trim

    assert asyncio.run(main()) is True
    assert trimmed_on and trimmed_on[0] != threading.get_ident()
    assert ticks >= 10  # the loop ran while the trim slept (on the loop: one tick)
