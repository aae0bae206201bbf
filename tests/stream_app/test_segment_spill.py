"""Summary segments beyond the memory budget, on disk (``stream_app.segment_spill``)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest

from stream_app import segment_spill
from stream_app.counters import Counters
from stream_app.label_join import LabelJoin
from stream_app.segment_spill import SegmentSpill
from stream_app.state_store import MemoryStore
from stream_app.summary_columns import Summary


def test_values_read_back_from_files_that_have_no_name(tmp_path: Path) -> None:
    spill = SegmentSpill(tmp_path, 0)
    values = [b"first" * 100, b"second" * 50, b"x"]
    views = spill.write(values)
    assert [bytes(view) for view in views] == values
    assert spill.files == 1 and spill.bytes_on_disk == sum(map(len, values))
    assert os.listdir(tmp_path) == [], "a crash leaves nothing behind"
    spill.release_pages()  # the pages go; the values read back from the page cache
    assert [bytes(view) for view in views] == values


def test_a_file_is_freed_with_its_last_view(tmp_path: Path) -> None:
    spill = SegmentSpill(tmp_path, 0)
    views = spill.write([b"a" * 4096, b"b" * 4096])
    column = np.frombuffer(views[1], dtype=np.uint8)  # a segment's column views the map
    del views
    gc.collect()
    assert spill.files == 1, "a column still views the file"
    assert column[0] == ord("b")
    del column
    gc.collect()
    assert spill.files == 0 and spill.bytes_on_disk == 0


def test_a_large_spill_is_cut_into_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_spill, "FILE_BYTES", 10_000)
    spill = SegmentSpill(tmp_path, 0)
    values = [bytes([n]) * 4_000 for n in range(5)] + [b"z" * 25_000]
    views = spill.write(values)
    assert [bytes(view) for view in views] == values
    assert spill.files == 4  # 2 + 2 + 1 of 4,000 bytes, and the one above the size alone


def test_an_unwritable_directory_names_itself_and_what_to_do(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(OSError, match=r"spill directory .*file.*join_memory_mb"):
        SegmentSpill(blocked / "spill", 0).write([b"value"])


def _summary(n: int) -> Summary:
    return Summary("churn", 0.0, 60.0, str(n % 2), n / 1000, 1_000.0 + n, "p", n)


def test_the_join_keeps_its_segments_within_the_budget_and_reads_them_from_disk(
    tmp_path: Path,
) -> None:
    """Past the budget the oldest segments go to disk; what a label meets is the same."""
    spill = SegmentSpill(tmp_path, 200_000)
    store = MemoryStore()
    join = LabelJoin(store, 1, Counters(), spill)
    for flush in range(20):
        ids = [f"p{flush}-{n}" for n in range(4_000)]
        for n, pid in enumerate(ids):
            join.add_summary(0, pid, _summary(flush * 4_000 + n))
        join.seal()
        assert join.bytes_in_memory() <= spill.budget_bytes
    on_disk = [s for s in join._columns[0].segments.values() if s.on_disk]
    assert on_disk and spill.bytes_on_disk > 0
    assert isinstance(store.data["0#c0"], memoryview), "the table holds the file's copy"
    # The first flush's summaries (on disk) and the last's (in memory) meet their labels.
    for flush in (0, 19):
        ids = [f"p{flush}-{n}" for n in range(0, 4_000, 7)]
        identities = [(flush, n) for n in range(len(ids))]
        labels = ["1"] * len(ids)
        pairs = join.add_labels(0, ids, "churn", labels, identities, [9e9] * len(ids))
        expected = [_summary(flush * 4_000 + n) for n in range(0, 4_000, 7)]
        assert [pair.summary for pair in pairs.pairs()] == expected
    assert join.waiting_summaries() == 80_000 - 2 * len(range(0, 4_000, 7))
    # Expiry reads the segments on disk too.
    expired = Counters()
    join.counters = expired
    join.expire([0], lambda partition: 1_000.0 + 40_000)
    assert expired.unlabeled_predictions == 40_000 - len(range(0, 4_000, 7))


def test_a_spill_that_fails_keeps_the_segments_in_memory_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    join = LabelJoin(MemoryStore(), 1, Counters(), SegmentSpill(blocked / "spill", 0))
    for flush in range(2):
        join.add_summary(0, f"p{flush}", _summary(flush))
        join.seal()
    assert join.bytes_in_memory() > 0
    assert [r.levelname for r in caplog.records].count("ERROR") == 1, "once a minute"
    assert "join_memory_mb" in caplog.text
    pair = join.add_label(0, "p0", "churn", "1", (0, 0), 9e9)
    assert pair is not None and pair.summary == _summary(0)
