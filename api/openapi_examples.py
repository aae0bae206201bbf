"""Response examples in the OpenAPI document, taken from real answers.

``openapi_examples.json`` holds, per operation (``"GET /api/v1/models/{model_id}"``), the
body the API gave in the test suite over data the pipeline's code wrote, with lists cut
to two items (``tests/api/test_openapi_examples.py`` writes it when run with
``DRIFTLINE_WRITE_OPENAPI_EXAMPLES=1`` and checks that every operation has one). Written
by hand they would drift from what the API answers; taken from answers they cannot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

EXAMPLES_FILE = Path(__file__).with_name("openapi_examples.json")
LIST_ITEMS = 2  # items kept of every list: enough to show the shape


def load() -> dict[str, Any]:
    if not EXAMPLES_FILE.exists():
        return {}
    found: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return found


def shorten(value: Any) -> Any:
    """``value`` with every list cut to :data:`LIST_ITEMS` items (recursively)."""
    if isinstance(value, list):
        return [shorten(item) for item in value[:LIST_ITEMS]]
    if isinstance(value, dict):
        return {key: shorten(item) for key, item in value.items()}
    return value


def install(app: FastAPI) -> None:
    """Put the stored examples into the app's OpenAPI document (built once, on demand)."""
    build: Callable[[], dict[str, Any]] = app.openapi
    examples = load()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                example = examples.get(f"{method.upper()} {path}")
                if example is None:
                    continue
                status, body = example["status"], example["body"]
                response = operation.setdefault("responses", {}).setdefault(str(status), {})
                content = response.setdefault("content", {}).setdefault("application/json", {})
                content["example"] = body
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
