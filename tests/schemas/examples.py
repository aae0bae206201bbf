"""Example messages shared by the parsing tests and the JSON Schema tests."""

from __future__ import annotations

import json
from typing import Any

MISSING: Any = object()
"""Pass as a change to remove the field."""


def event(**changes: Any) -> dict[str, Any]:
    """A valid prediction event; ``changes`` replace fields (``MISSING`` removes one)."""
    body: dict[str, Any] = {
        "model_id": "churn-v2",
        "model_version": "2024.05.1",
        "prediction_id": "p-000001",
        "timestamp": "2024-05-01T12:00:00Z",
        "features": {"age": 42, "income": 5120.5, "plan": "pro", "is_new": False, "zip": None},
        "prediction": 1,
        "score": 0.83,
    }
    return _apply(body, changes)


def record(**changes: Any) -> dict[str, Any]:
    """A valid batch record."""
    body = event(**changes)
    del body["model_id"], body["model_version"]
    return body


def batch(records: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    """A valid batch envelope (three records unless given)."""
    if records is None:
        records = [record(prediction_id=f"p-{i}") for i in range(3)]
    return _apply({"model_id": "churn-v2", "model_version": "7", "records": records}, changes)


def label(**changes: Any) -> dict[str, Any]:
    """A valid label event."""
    body = {
        "model_id": "churn-v2",
        "prediction_id": "p-000001",
        "label": 1,
        "timestamp": 1714564800,
    }
    return _apply(body, changes)


def routing(**changes: Any) -> dict[str, Any]:
    """A valid alert routing file (as loaded from YAML): every kind of route and receiver."""
    body: dict[str, Any] = {
        "route": {
            "receiver": "ml-team",
            "group_by": ["model"],
            "group_wait": "30s",
            "repeat_interval": 14400,
            "routes": [
                {
                    "matchers": ['severity="critical"'],
                    "receiver": "ml-oncall",
                    "group_wait": 0,
                    "continue": True,
                },
                {"matchers": ["team=~risk|fraud"], "receiver": "risk", "group_by": ["..."]},
            ],
        },
        "receivers": [
            {"name": "ml-team", "slack": [{"webhook_url_env": "SLACK_WEBHOOK_URL"}]},
            {
                "name": "ml-oncall",
                "slack": [{"token_file": "/run/secrets/slack-token", "channel": "#oncall"}],
                "email": [
                    {
                        "to": ["oncall@example.com"],
                        "from": "driftline@example.com",
                        "host": "smtp.example.com",
                        "username": "driftline",
                        "password_env": "SMTP_PASSWORD",
                    }
                ],
            },
            {"name": "risk", "send_resolved": False},
        ],
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["model"],
            }
        ],
        "dashboard_url": "https://driftline.example.com/",
        "top_n": 5,
    }
    return _apply(body, changes)


def _apply(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if value is MISSING:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()
