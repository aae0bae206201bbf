"""Field types shared by the event contracts.

The value unions (feature value, prediction, label, score) are built as pydantic-core union
schemas with one custom error: a plain ``float | int | str | bool`` would report one error
per member (``features.age.float``, ``features.age.int``, …), which is noise in a
dead-letter reason. The unions run in Rust, so a record with dozens of features costs no
Python call per feature.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, GetCoreSchemaHandler, StringConstraints
from pydantic_core import CoreSchema, core_schema

try:
    from schemas._envelope_native import digit_run
except ImportError:  # built without a C compiler
    digit_run = None  # type: ignore[assignment]

# JSON integers must fit in 64 bits, signed or not: orjson (the fast paths, and every
# serialization later in the pipeline) reads wider ones as floats and refuses to write them.
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
INTEGER_OUT_OF_RANGE = "integer out of range, JSON integers must fit in 64 bits"
_WIDE_DIGITS = 19  # the fewest digits of an integer outside 64 bits
_DIGITS_ONLY = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))


def may_hold_wide_integer(raw: bytes | str) -> bool:
    """False when no integer literal in ``raw`` can lie outside 64 bits (it has no run of 19
    digits), which spares the callers a look at every value.

    Examples
    --------
    >>> may_hold_wide_integer(b'{"x": 18446744073709551616}'), may_hold_wide_integer(b'{"x": 1}')
    (True, False)
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if digit_run is not None:
        return digit_run(raw, _WIDE_DIGITS)
    return b"0" * _WIDE_DIGITS in raw.translate(_DIGITS_ONLY)


MODEL_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"

ModelId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=MODEL_ID_PATTERN),
    Field(description="Model identifier: 1-128 characters from A-Z a-z 0-9 . _ : -"),
]
ModelVersion = Annotated[
    str,
    StringConstraints(max_length=128),
    Field(description="Model version as the serving side names it (free text, may be empty)"),
]
PredictionId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    Field(description="Identifier of one prediction, unique per model; labels join on it"),
]
FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_SCORE_CLASSES = 10_000


class _UnionWithOneError:
    """Annotated marker: validate as a union of ``choices`` and report ``message`` on failure."""

    def __init__(self, error_type: str, message: str, *choices: CoreSchema) -> None:
        self.error_type = error_type
        self.message = message
        self.choices = choices

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.union_schema(
            list(self.choices),
            custom_error_type=self.error_type,
            custom_error_message=self.message,
            mode="smart",
        )


def _probability() -> CoreSchema:
    return core_schema.float_schema(strict=True, allow_inf_nan=False, ge=0.0, le=1.0)


def _scalar(*, allow_inf_nan: bool) -> list[CoreSchema]:
    # Smart mode keeps the JSON type: 3 stays an int, 3.0 a float, true a bool (strict number
    # schemas refuse bools, so true is never read as 1).
    return [
        core_schema.int_schema(strict=True),
        core_schema.float_schema(strict=True, allow_inf_nan=allow_inf_nan),
        core_schema.str_schema(strict=True),
        core_schema.bool_schema(strict=True),
    ]


FeatureValue = Annotated[
    float | int | str | bool | None,
    # NaN and ±Infinity are accepted in features only: Python's json.dumps writes pandas'
    # missing values as NaN, and the detectors count NaN as missing and ±inf as invalid.
    # (Serialized again, pydantic writes them as null.)
    _UnionWithOneError(
        "feature_value",
        "value must be a number, string, bool or null",
        *_scalar(allow_inf_nan=True),
        core_schema.none_schema(),
    ),
]
Features = Annotated[
    dict[FeatureName, FeatureValue],
    Field(
        description=(
            "Input features by name. Values are scalars: number, string, bool or null "
            "(missing); objects and arrays are not allowed."
        )
    ),
]

ScalarOutcome = Annotated[
    float | int | str | bool,
    _UnionWithOneError(
        "outcome", "must be a finite number, string or bool", *_scalar(allow_inf_nan=False)
    ),
]

Score = Annotated[
    float | list[float] | None,
    _UnionWithOneError(
        "score",
        "must be a probability in [0, 1], a list of them (one per class) or null",
        _probability(),
        core_schema.list_schema(
            _probability(), min_length=1, max_length=MAX_SCORE_CLASSES, strict=True
        ),
        core_schema.none_schema(),
    ),
    Field(
        description=(
            "Binary: probability of the positive class. Multiclass: one probability per "
            "class, in the order of the model's configured classes. Null or absent: none."
        )
    ),
]
