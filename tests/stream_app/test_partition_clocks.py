"""Stage 1's partition clocks on their own: backlog, the label watermark's fallbacks, and
what survives a restart through the store."""

from __future__ import annotations

from stream_app.partition_clocks import PartitionClocks
from stream_app.state_store import MemoryStore
from tests.stream_app.local_pipeline import FakeClock as Clock


def test_a_partition_is_behind_until_it_has_processed_its_log_end() -> None:
    clocks = PartitionClocks(MemoryStore(), idle_timeout=5.0, clock=Clock())
    clocks.note_log_end(0, None, done=-1)
    assert clocks.predictions(0).backlog  # nothing fetched, nothing seen: not empty yet
    clocks.read("prediction", 0, 9)
    clocks.note_log_end(0, 20, done=-1)
    assert clocks.predictions(0).backlog
    clocks.note_log_end(0, 20, done=19)  # a previous owner's checkpoint covers the rest
    assert not clocks.predictions(0).backlog
    clocks.note_label_log_end(0, None, done=-1)
    assert clocks.labels(0).backlog  # an unknown labels log end holds labels back


def test_the_label_watermark_holds_while_labels_are_unread_and_else_follows_predictions() -> None:
    clocks = PartitionClocks(MemoryStore(), idle_timeout=5.0, clock=Clock())
    clocks.predictions(0).observe(500.0)
    clocks.note_label_log_end(0, 3, done=-1)
    assert clocks.label_watermark(0) is None  # three labels unread
    clocks.read("label", 0, 2)
    clocks.note_label_log_end(0, 3, done=-1)
    assert clocks.label_watermark(0) == 500.0  # read to its end, no label seen
    clocks.labels(0).observe(420.0)
    assert clocks.label_watermark(0) == 420.0


def test_watermarks_saved_with_a_flush_come_back_after_a_restart() -> None:
    store, source = MemoryStore(), Clock()
    clocks = PartitionClocks(store, idle_timeout=5.0, clock=source)
    clocks.predictions(1).observe(300.0)
    clocks.labels(1).observe(200.0)
    clocks.save(1)
    restarted = PartitionClocks(store, idle_timeout=5.0, clock=source)
    assert restarted.predictions(1).event_watermark == 300.0
    assert restarted.labels(1).event_watermark == 200.0
    clocks.forget(1)
    assert clocks.positions == {} and clocks.predictions(1).event_watermark == 300.0
