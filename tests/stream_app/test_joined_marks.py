"""The joined labels a replay could read again, one record per flush
(``stream_app.joined_marks``)."""

from __future__ import annotations

import pytest

from stream_app.joined_marks import RECORD_BYTES, JoinedMarks
from stream_app.state_store import MemoryStore


def test_a_record_goes_once_the_checkpoint_covers_its_last_label() -> None:
    marks, store = JoinedMarks(), MemoryStore()
    marks.mark(0, "a", (5, 0))
    marks.mark(0, "b", (7, 2))
    marks.seal(store)
    marks.mark(1, "c", (3, 0))
    marks.seal(store)
    assert set(store.data) == {"0#j0", "1#j0"}
    marks.drop_covered(lambda partition: 6, store)
    assert not marks.joined(1) and set(marks.joined(0)) == {"a", "b"}
    assert set(store.data) == {"0#j0"}  # label 7 is past partition 0's checkpoint
    marks.drop_covered(lambda partition: 7, store)
    assert store.data == {} and not marks.joined(0) and not marks.joined(1)


def test_marks_made_together_are_the_marks_made_one_by_one() -> None:
    ids, identities = ["a", "b", "c"], [(5, 0), (5, 1), (7, 0)]
    one, many = JoinedMarks(), JoinedMarks()
    one.mark(0, "z", (1, 0))
    many.mark(0, "z", (1, 0))
    for prediction_id, identity in zip(ids, identities, strict=True):
        one.mark(0, prediction_id, identity)
    many.mark_many(0, ids, identities)
    stores = MemoryStore(), MemoryStore()
    for marks, store in zip((one, many), stores, strict=True):
        marks.seal(store)
    assert (
        one.joined(0) == many.joined(0) == {"z": (1, 0), **dict(zip(ids, identities, strict=True))}
    )
    assert stores[0].data == stores[1].data


def test_an_id_marked_again_since_stays_marked_when_its_older_record_goes() -> None:
    marks, store = JoinedMarks(), MemoryStore()
    marks.mark(0, "a", (5, 0))
    marks.seal(store)
    marks.mark(0, "a", (9, 0))  # its summary forwarded again by a replay, and labelled
    marks.seal(store)
    marks.drop_covered(lambda partition: 5, store)
    assert marks.joined(0) == {"a": (9, 0)}


def test_a_restart_learns_the_records_and_numbers_new_ones_after_them() -> None:
    marks, store = JoinedMarks(), MemoryStore()
    for offset in (1, 2):
        marks.mark(0, f"p{offset}", (offset, 0))
        marks.seal(store)
    restored = JoinedMarks()
    restored.restore(0, [(int(key[3:]), value) for key, value in store.data.items()])
    assert restored.joined(0) == {"p1": (1, 0), "p2": (2, 0)}
    restored.mark(0, "p3", (3, 0))
    restored.seal(store)
    assert set(store.data) == {"0#j0", "0#j1", "0#j2"}
    restored.drop_covered(lambda partition: 1, store)
    assert set(restored.joined(0)) == {"p2", "p3"}


def test_a_record_of_an_unknown_version_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="newer Driftline"):
        JoinedMarks().restore(0, [(0, b"\x02{}")])


def test_many_marks_are_several_records_under_the_size_limit_and_restore_whole() -> None:
    marks, store = JoinedMarks(), MemoryStore()
    for i in range(60_000):
        marks.mark(0, f"a-long-prediction-id-{i}", (i // 500, i % 500))
    marks.seal(store)
    assert len(store.data) > 1
    assert max(map(len, store.data.values())) <= RECORD_BYTES
    restored = JoinedMarks()
    restored.restore(0, [(int(key[3:]), value) for key, value in store.data.items()])
    assert restored.joined(0) == marks.joined(0)
    restored.drop_covered(lambda partition: 119, store)
    assert store.data == {} and not restored.joined(0)
