"""A small JSON Schema (2020-12) validator for the keywords our generated schemas use.

The ``jsonschema`` package is not a dependency. This covers exactly the keywords pydantic
writes into ``schemas/json/`` and raises on any other, so a schema that starts using a new
keyword fails the tests instead of passing unchecked. ``format`` is an annotation, as the
2020-12 default says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "default", "examples", "format"}

Schema = dict[str, Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: _is_number(v) and float(v).is_integer(),
}

# keyword -> (applies to values where, check(value, argument) is True when valid, complaint)
_SIMPLE: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool], str]] = {
    "minLength": (lambda v: isinstance(v, str), lambda v, a: len(v) >= a, "shorter than {}"),
    "maxLength": (lambda v: isinstance(v, str), lambda v, a: len(v) <= a, "longer than {}"),
    "pattern": (
        lambda v: isinstance(v, str),
        lambda v, a: bool(re.search(a, v)),
        "does not match {}",
    ),
    "minItems": (lambda v: isinstance(v, list), lambda v, a: len(v) >= a, "fewer items than {}"),
    "maxItems": (lambda v: isinstance(v, list), lambda v, a: len(v) <= a, "more items than {}"),
    "minimum": (_is_number, lambda v, a: v >= a, "< {}"),
    "maximum": (_is_number, lambda v, a: v <= a, "> {}"),
    "exclusiveMinimum": (_is_number, lambda v, a: v > a, "<= {}"),
    "exclusiveMaximum": (_is_number, lambda v, a: v < a, ">= {}"),
    "enum": (lambda v: True, lambda v, a: v in a, "not one of {}"),
    "const": (lambda v: True, lambda v, a: v == a, "not {}"),
    "type": (
        lambda v: True,
        lambda v, a: any(_TYPES[name](v) for name in ([a] if isinstance(a, str) else a)),
        "not of type {}",
    ),
}


def errors(instance: Any, schema: Schema) -> list[str]:
    """Return what is wrong with ``instance`` (empty when it is valid)."""
    return _Validator(schema).check(instance, schema, "$")


class _Validator:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def check(self, value: Any, schema: Schema, path: str) -> list[str]:
        found: list[str] = []
        for keyword, arg in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            if keyword in _SIMPLE:
                applies, ok, complaint = _SIMPLE[keyword]
                if applies(value) and not ok(value, arg):
                    found.append(f"{path}: {complaint.format(arg)}")
            elif keyword == "$ref":
                found += self.check(value, self.resolve(arg), path)
            elif keyword == "anyOf":
                if all(self.check(value, option, path) for option in arg):
                    found.append(f"{path}: matches none of anyOf")
            elif keyword == "items":
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        found += self.check(item, arg, f"{path}[{i}]")
            elif keyword in _OBJECT_KEYWORDS:
                if isinstance(value, dict):
                    found += self.check_object(value, keyword, arg, schema, path)
            else:
                raise NotImplementedError(f"keyword {keyword!r} is not supported by the subset")
        return found

    def check_object(
        self, value: dict[str, Any], keyword: str, arg: Any, schema: Schema, path: str
    ) -> list[str]:
        found: list[str] = []
        patterns = schema.get("patternProperties", {})
        if keyword == "required":
            found += [f"{path}.{key}: required" for key in arg if key not in value]
        elif keyword == "properties":
            for key, sub in arg.items():
                if key in value:
                    found += self.check(value[key], sub, f"{path}.{key}")
        elif keyword == "patternProperties":
            for pattern, sub in arg.items():
                for key in value:
                    if re.search(pattern, key):
                        found += self.check(value[key], sub, f"{path}.{key}")
        elif keyword == "propertyNames":
            for key in value:
                found += self.check(key, arg, f"{path}[{key!r}]")
        else:  # additionalProperties
            known = schema.get("properties", {})
            for key in value:
                if key in known or any(re.search(p, key) for p in patterns):
                    continue
                if arg is False:
                    found.append(f"{path}.{key}: additional property")
                elif arg is not True:
                    found += self.check(value[key], arg, f"{path}.{key}")
        return found

    def resolve(self, ref: str) -> Schema:
        if not ref.startswith("#/"):
            raise NotImplementedError(f"only local references are supported, got {ref!r}")
        target: Any = self.root
        for part in ref[2:].split("/"):
            target = target[part]
        return dict(target)


_OBJECT_KEYWORDS = {
    "required",
    "properties",
    "patternProperties",
    "propertyNames",
    "additionalProperties",
}
