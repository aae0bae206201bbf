"""The stages' keys read back as they were made, whatever the model id holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream_app import table_keys as keys


@given(
    partition=st.integers(0, 1000),
    model_id=st.text(min_size=1, max_size=30),
    start=st.floats(allow_nan=False, allow_infinity=False),
)
def test_a_window_key_reads_back_from_its_record_and_quality_keys(
    partition: int, model_id: str, start: float
) -> None:
    window = keys.WindowKey(partition, model_id, start)
    assert keys.window_of(window.record, keys.record_prefix(partition)) == window
    assert keys.window_of(window.quality, keys.quality_prefix(partition)) == window
    assert keys.quality_key_of(window.record) == window.quality
    assert window.record.startswith(keys.record_prefix(partition, model_id))
    assert keys.window_of(window.window, keys.window_prefix(partition)) == window
