"""The worker's in-memory table store starts every recovery from an empty table."""

from __future__ import annotations

import asyncio

import faust
import pytest
from faust.stores import by_url
from faust.types import TP

from stream_app.memory_store import RebuildingMemoryStore, register, store_url


def test_memory_urls_map_to_the_rebuilding_store() -> None:
    register()
    assert store_url("memory://") == "driftline-memory://"
    assert store_url("rocksdb://") == "rocksdb://"
    assert by_url(store_url("memory://")) is RebuildingMemoryStore


@pytest.fixture
def store() -> RebuildingMemoryStore:
    register()
    app = faust.App("t-memory-store", store="driftline-memory://", autodiscover=False)
    table = app.Table("t", key_type=str, value_type=bytes)
    data = table.data
    assert isinstance(data, RebuildingMemoryStore)
    return data


def test_a_rebalance_forgets_every_key(store: RebuildingMemoryStore) -> None:
    store.data["kept|a"] = b"1"
    store._key_partition["kept|a"] = 0
    store.data["other|b"] = b"2"  # written by the worker, never restored
    asyncio.run(store.on_rebalance({TP("t-changelog", 0)}, set(), set(), 3))
    assert dict(store.data) == {}
    assert dict(store._key_partition) == {}


def test_nothing_counts_as_persisted(store: RebuildingMemoryStore) -> None:
    """Faust's recovery takes this over any offset it remembers: read from the start."""
    assert store.persisted_offset(TP("t-changelog", 2)) == -1
