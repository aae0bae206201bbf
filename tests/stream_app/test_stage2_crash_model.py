"""Stage 2 killed at any point of its changelog writes, restarted from a committed offset:
the results of a run never killed.

A window's record is two keys (the drift part and the quality part, ``WindowRecord``), and a
flush makes each key's last value durable at the position of its first write in the batch
(``FaustTableStore``: a kill keeps a prefix of that). So a kill can keep one part of a record
and not the other, with both written in the same batch. The restarted stage 2 reads its
input again from a batch that was committed (0 or 2 batches before the one in flight) over
the store the prefix rebuilds. Its input is the window-partials messages stage 1 sent in
the kill model's clean run (labels before and after their windows' partials, late events,
revisions).

The results compared include the history each window's control limits drew on: the
model's history is a key of its own, written after the window it adds, and is sent first
(``FaustTableStore``'s ``sent_first``) so that a final window is never durable without it.

A real worker lost a labels message this way (the drift part, durable, claimed its offset
applied; the quality part holding its pairs was not) and, the other way round, a window's
partials (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np
import pytest

from stream_app import messages
from stream_app import table_keys as keys
from stream_app.counters import Counters
from stream_app.stage2 import Stage2
from tests.stream_app.local_pipeline import RecordingWriter
from tests.stream_app.test_crash_model import (
    CLEAN_LOG,
    Durable,
    KilledError,
    LoggedStore,
    _registry,
    results_of,
)

pytestmark = pytest.mark.slow  # make test runs it; make test-unit does not

# Per Kafka message, what it carries (a pack of label windows carries several).
SENT = [messages.decode_all(entry[1]) for entry in CLEAN_LOG if entry[0] == "stage2"]
# Messages per batch: what one batch writes (the parts of several windows, each first
# written by one kind of message and rewritten by another) depends on where batches end.
BATCHES = (7, 20)


async def _incarnation(
    durable: Durable, writer: RecordingWriter, first: int, commits: list[int], size: int
) -> None:
    """One worker's stage 2 from message ``first`` on: batches, each flushed, then committed,
    and a timer tick (finalizations, revisions) after each, flushed too."""
    store = LoggedStore("records", durable, keys.is_history_key)  # as the worker's
    stage2 = Stage2(_registry(), store, writer, Counters())
    for start in range(first, len(SENT), size):
        batch = [
            (0, m, start + i)
            for i, carried in enumerate(SENT[start : start + size])
            for m in carried
        ]
        await stage2.handle_batch(batch)
        await stage2.flush()
        commits.append(min(start + size, len(SENT)))  # Faust commits only what a flush covered
        await stage2.tick([0])
        await stage2.flush()
    for _ in range(2):
        await stage2.tick([0])
        await stage2.flush()


async def _run(kills: list[tuple[int, int]], size: int) -> tuple[dict[Any, Any], Durable]:
    """To the end in batches of ``size``; each kill: (changelog length at which it dies,
    batches of commit lag)."""
    durable, writer, commits, first = Durable(), RecordingWriter(), [0], 0
    for at, lag in kills:
        durable.limit = at
        with contextlib.suppress(KilledError):
            await _incarnation(durable, writer, first, commits, size)
        durable.limit = None
        first = commits[max(0, len(commits) - 1 - lag)]
    await _incarnation(durable, writer, first, commits, size)
    return results_of(writer), durable


CLEAN, CLEAN_DURABLE = asyncio.run(_run([], BATCHES[0]))
WRITES = {size: len(asyncio.run(_run([], size))[1].log) for size in BATCHES}


def test_the_input_has_labels_before_and_after_partials_and_late_events() -> None:
    kinds = [m.kind for carried in SENT for m in carried]
    first_partial = kinds.index("partial")
    assert "labels" in kinds[:first_partial] and "labels" in kinds[first_partial:]
    assert "late" in kinds
    assert sum(v[2] for v in CLEAN.values()) > 0 and min(WRITES.values()) > 40
    assert all(asyncio.run(_run([], size))[0] == CLEAN for size in BATCHES[1:])


@pytest.mark.parametrize("size", BATCHES)
@pytest.mark.parametrize("lag", [0, 2])
def test_a_kill_at_any_changelog_write_gives_the_clean_results(lag: int, size: int) -> None:
    wrong = []
    for at in range(1, WRITES[size]):
        found, _ = asyncio.run(_run([(at, lag)], size))
        if found != CLEAN:
            wrong.append(at)
    assert not wrong, (
        f"{len(wrong)} of {WRITES[size] - 1} kill points differ, the first at {wrong[:5]}"
    )


@pytest.mark.parametrize("seed", range(6))
def test_three_kills_give_the_clean_results(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = BATCHES[seed % len(BATCHES)]
    kills, at = [], 0
    for _ in range(3):
        at += int(rng.integers(1, max(2, WRITES[size] // 3)))
        kills.append((at, int(rng.integers(0, 3))))
    found, _ = asyncio.run(_run(kills, size))
    assert found == CLEAN
