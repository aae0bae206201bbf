"""The order a flush puts a table's writes on its changelog (a kill keeps a prefix)."""

from __future__ import annotations

import asyncio
from typing import Any

from stream_app import table_keys as keys
from stream_app.state_store import FaustTableStore


class ChangelogTable:
    """What FaustTableStore uses of a Faust table: its data and its changelog sends."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sent: list[tuple[int, str, bytes | None]] = []

    def send_changelog(self, partition: int, key: str, value: Any, **_: Any) -> Any:
        self.sent.append((partition, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def flushed(store: FaustTableStore) -> None:
    asyncio.run(store.flush())


def test_a_flush_sends_the_last_value_of_each_key_where_it_was_first_written() -> None:
    table = ChangelogTable()
    store = FaustTableStore(table)
    store.set(0, "0|r|m|1", b"a")
    store.set(0, "0|h|m", b"h1")
    store.set(0, "0|r|m|1", b"b")
    flushed(store)
    assert table.sent == [(0, "0|r|m|1", b"b"), (0, "0|h|m", b"h1")]


def test_history_goes_first_so_no_final_record_is_durable_without_it() -> None:
    table = ChangelogTable()
    store = FaustTableStore(table, sent_first=keys.is_history_key)
    store.set(0, keys.WindowKey(0, "m", 60.0).record, b"partial merged")
    store.set(1, keys.WindowKey(1, "m", 0.0).quality, b"labels")
    store.set(0, keys.history_key(0, "m"), b"with window 60")
    store.set(0, keys.WindowKey(0, "m", 60.0).record, b"final")
    store.set(1, keys.history_key(1, "m"), b"other partition")
    flushed(store)
    assert [key for _, key, _ in table.sent] == [
        keys.history_key(0, "m"),
        keys.history_key(1, "m"),
        keys.WindowKey(0, "m", 60.0).record,
        keys.WindowKey(1, "m", 0.0).quality,
    ]
    assert table.sent[2][2] == b"final"
    table.sent.clear()
    flushed(store)  # nothing written since: nothing sent
    assert table.sent == []


def test_only_history_keys_are_history_keys() -> None:
    assert keys.is_history_key(keys.history_key(3, "churn|v2"))
    window = keys.WindowKey(3, "h", 0.0)
    assert not any(keys.is_history_key(k) for k in (window.record, window.quality))
    assert not keys.is_history_key(keys.watermark_key(3, 1))
