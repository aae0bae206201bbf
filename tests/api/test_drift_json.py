"""The drift page's fast JSON (api/drift_json.py) is the document the response model writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from api.drift_json import drift_page_json
from api.schemas import DriftPage
from api.schemas import DriftPoint as DriftPointModel
from storage.drift_pages import DriftPoint

floats = st.none() | st.floats(allow_nan=True, allow_infinity=True)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)
points = st.builds(
    DriftPoint,
    window_start=times,
    feature=st.text(),
    method=st.text(),
    score=floats,
    p_value=floats,
    threshold=floats,
    drifted=st.none() | st.booleans(),
    status=st.sampled_from(["ok", "warning", "drift", "no data"]) | st.text(),
)


def strict(model_id: str, items: list[DriftPoint], next_cursor: str | None) -> str:
    """What the route wrote before the fast path: the response model, serialized by pydantic
    (FastAPI's own path for a declared response model)."""
    models = [DriftPointModel.model_validate(p, from_attributes=True) for p in items]
    return DriftPage(model_id=model_id, items=models, next_cursor=next_cursor).model_dump_json()


def parsed(body: bytes | str) -> object:
    # Pairs, not a dict: the key order must match too.
    return json.loads(body, object_pairs_hook=lambda pairs: pairs)


@given(st.text(), st.lists(points, max_size=20), st.none() | st.text())
def test_fast_page_is_the_strict_page(
    model_id: str, items: list[DriftPoint], next_cursor: str | None
) -> None:
    assert parsed(drift_page_json(model_id, items, next_cursor)) == parsed(
        strict(model_id, items, next_cursor)
    )


def test_floats_and_times_read_back_exactly() -> None:
    at = datetime(2026, 11, 30, 13, 0, 0, 123, tzinfo=UTC)
    point = DriftPoint(at, "f", "psi", 0.1 + 0.2, 5e-324, float("inf"), True, "drift")
    item = json.loads(
        drift_page_json("m", [point, point._replace(window_start=at + timedelta(hours=1))], None)
    )["items"][0]
    assert item["window_start"] == "2026-11-30T13:00:00.000123Z"
    assert item["score"] == 0.1 + 0.2
    assert item["p_value"] == 5e-324
    assert item["threshold"] is None
