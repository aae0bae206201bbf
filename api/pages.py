"""Opaque page cursors: the key of the last row, as URL-safe base64 of JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from fastapi import HTTPException

from storage.drift_pages import PageKey


def encode(key: PageKey) -> str:
    raw = json.dumps([key[0].isoformat(), key[1], key[2]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> PageKey:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, feature, method = json.loads(base64.urlsafe_b64decode(padded))
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None or not isinstance(feature, str) or not isinstance(method, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise HTTPException(400, "cursor: not a cursor this API gave out") from None
    return at, feature, method
