"""The join table's per-id values read back as they were written, in the stored form
every earlier version wrote (one-letter JSON keys), and a newer kind refused by name."""

from __future__ import annotations

import orjson
import pytest

from stream_app.join_entries import (
    JoinedMark,
    WaitingLabel,
    is_joined_mark,
    read_entry,
    summary_of,
)
from stream_app.summary_columns import Summary


@pytest.mark.parametrize(
    "entry",
    [
        WaitingLabel("churn", "1", 120.5, 7, 0),
        WaitingLabel("churn", 0, 120.5, 7, 3),
        WaitingLabel("churn", True, 1e9, None, 0),
        JoinedMark(7, 0, 99.0),
        JoinedMark(8, 12, 99.0),
    ],
)
def test_an_entry_reads_back_as_written(entry: WaitingLabel | JoinedMark) -> None:
    raw = entry.to_bytes()
    assert read_entry(raw) == entry
    assert is_joined_mark(raw) == isinstance(entry, JoinedMark)


def test_the_stored_form_is_the_one_earlier_versions_wrote() -> None:
    assert orjson.loads(WaitingLabel("m", "1", 5.0, 3, 2).to_bytes()) == {
        "k": "l", "m": "m", "y": "1", "x": 5.0, "o": 3, "i": 2,
    }  # fmt: skip
    assert orjson.loads(JoinedMark(3, 0, 5.0).to_bytes()) == {"k": "d", "o": 3, "x": 5.0}
    older_label = b'{"k":"l","m":"m","y":"1","x":5.0}'  # before label offsets were kept
    assert read_entry(older_label) == WaitingLabel("m", "1", 5.0, None, 0)
    assert read_entry(older_label).identity is None  # type: ignore[union-attr]
    older_summary = b'{"k":"p","m":"m","ws":0.0,"we":60.0,"y":"1","s":0.5,"x":9.0}'
    assert read_entry(older_summary) == Summary("m", 0.0, 60.0, "1", 0.5, 9.0, "p", -1)
    with_origin = {**orjson.loads(older_summary), "sk": "j", "so": 4}
    assert summary_of(with_origin) == Summary("m", 0.0, 60.0, "1", 0.5, 9.0, "j", 4)


def test_a_value_of_a_kind_this_version_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown kind 'z'.*newer Driftline"):
        read_entry(b'{"k":"z","x":1.0}')
