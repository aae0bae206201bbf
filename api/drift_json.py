"""A drift history page as JSON, written straight from the storage rows.

A page holds up to thousands of rows. Validating each into a :class:`api.schemas.DriftPoint`
and serializing the :class:`api.schemas.DriftPage` cost about 12 µs a row, more than the
query (docs/benchmarks.md); orjson writes the same document from the tuples in well under
one. "The same document": the same keys in the same order and the same values once parsed,
for every input, which tests/api/test_drift_json.py holds against the response model: UTC
times end in ``Z``, a NaN or infinite float is ``null`` (pydantic's default), text stays
UTF-8. Only the spelling of some floats differs (``1e20`` here, ``1e+20`` there).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from storage.drift_pages import DriftPoint

_FIELDS = DriftPoint._fields


def drift_page_json(model_id: str, points: Sequence[DriftPoint], next_cursor: str | None) -> bytes:
    """The body of a :class:`api.schemas.DriftPage` with these items."""
    items = [dict(zip(_FIELDS, point, strict=True)) for point in points]
    page = {"model_id": model_id, "items": items, "next_cursor": next_cursor}
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)
