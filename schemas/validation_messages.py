"""Turning a pydantic ``ValidationError`` into the one-line reason a person reads.

The reason of a rejected event is stored with it in the dead-letter topic and the reason of a
rejected configuration is shown by the API, so both must name the offending field the way a
producer wrote it (``records[3].features.age``), not the way pydantic nests its schemas.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import ErrorDetails

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a path a producer recognises.

    Keys that are not plain identifiers are quoted, so a feature called ``"a.b"`` is not read
    as a nested field.

    Examples
    --------
    >>> field_path(("records", 3, "features", "age"))
    'records[3].features.age'
    >>> field_path(("features", "a.b"))
    'features["a.b"]'
    >>> field_path(())
    ''
    """
    path = ""
    for item in loc:
        if isinstance(item, int):
            path += f"[{item}]"
        elif item == "[key]":
            path += " (the key)"
        elif _PLAIN_KEY.fullmatch(item):
            path += f".{item}" if path else item
        else:
            escaped = item.replace("\\", "\\\\").replace('"', '\\"')
            path += f'["{escaped}"]'
    return path


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return f"not valid JSON: {ctx.get('error', error['msg'])}"
    if kind == "value_error" and "error" in ctx:
        # pydantic prefixes our own ValueError messages with "Value error, ".
        return str(ctx["error"])
    if kind == "extra_forbidden":
        return "unknown field (extra keys are not allowed)"
    if kind == "missing":
        return "field required"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return "must be a JSON object"
    msg = error["msg"]
    # Lower-case pydantic's sentence case so every reason reads as "path: what is wrong".
    return msg[:1].lower() + msg[1:]


def describe_validation_error(exc: ValidationError, *, limit: int | None = 1) -> str:
    """Summarise ``exc`` as ``"path: what is wrong"``, joined by ``"; "``.

    Parameters
    ----------
    exc
        The error pydantic raised.
    limit
        How many errors to spell out; the rest are counted (``"(+2 more)"``). ``None`` spells
        out all of them. Events use 1 (the first problem is enough to fix the producer and the
        reason stays short); configurations use ``None`` (a person fixes them all at once).
    """
    errors = exc.errors(include_url=False, include_input=False)
    shown = errors if limit is None else errors[:limit]
    parts = []
    for error in shown:
        path = field_path(error["loc"])
        parts.append(f"{path}: {_message(error)}" if path else _message(error))
    summary = "; ".join(parts)
    hidden = len(errors) - len(shown)
    return f"{summary} (+{hidden} more)" if hidden else summary
