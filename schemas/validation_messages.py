"""Turning a pydantic ``ValidationError`` into the one-line reason a person reads.

The reason of a rejected event is stored with it in the dead-letter topic and the reason of a
rejected configuration is shown by the API, so both must name the offending field the way a
producer wrote it (``records[3].features.age``), not the way pydantic nests its schemas.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
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


def allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys the object holding ``loc``'s last key accepts, following ``model``'s fields
    (through nested models, lists and dicts of them); None when the path leaves the models.

    Examples
    --------
    >>> class Part(BaseModel):
    ...     name: str = ""
    ...     size: int = 0
    >>> allowed_keys(Part, ("nmae",))
    ['name', 'size']
    """
    current: Any = model
    for item in loc[:-1]:
        if isinstance(item, int) or item == "[key]":
            continue  # a list index or a dict's key: the items' type is already current
        fields = getattr(current, "model_fields", None)
        if fields is None or item not in fields:
            return None
        current = _model_in(fields[item].annotation)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    if fields is None:
        return None
    return [info.alias or name for name, info in fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X``, ``list[X]``, ``dict[str, X]`` or ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def describe_validation_error(
    exc: ValidationError, *, limit: int | None = 1, model: type[BaseModel] | None = None
) -> str:
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
        message = _message(error)
        if error["type"] == "extra_forbidden" and model is not None:
            keys = allowed_keys(model, tuple(error["loc"]))
            if keys:
                message += f"; allowed here: {', '.join(keys)}"
        parts.append(f"{path}: {message}" if path else message)
    summary = "; ".join(parts)
    hidden = len(errors) - len(shown)
    return f"{summary} (+{hidden} more)" if hidden else summary
