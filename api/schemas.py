"""Response models of the API, apart from the storage records they are built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ModelSummary(BaseModel):
    model_id: str
    config: dict[str, Any]
    current_fingerprint: str | None
    created_at: datetime
    updated_at: datetime


class ModelList(BaseModel):
    models: list[ModelSummary]


class DriftPoint(BaseModel):
    window_start: datetime
    feature: str
    method: str
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool | None
    status: str


class DriftPage(BaseModel):
    model_id: str
    items: list[DriftPoint]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null: the last page"
    )
