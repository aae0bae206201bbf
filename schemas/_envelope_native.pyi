"""Type stub of the native envelope decoder (schemas/_envelope_native.c)."""

from typing import Any

def decode(
    raw: bytes,
    numeric: tuple[bytes, ...],
    categorical: tuple[bytes, ...],
    binners: tuple[tuple[bytes, bytes, float], ...] | None = ...,
    single: tuple[bytes, bytes] | None = ...,
    /,
) -> (
    tuple[str, str, int, list[str], bytes, bytes, list[list[Any]], list[Any], bytes, bytes | None]
    | None
): ...
def decode_labels(raw: bytes, /) -> tuple[str, list[str], list[Any], bytes] | None: ...
def decode_label_run(values: list[bytes], /) -> tuple[str, list[str], list[Any], bytes] | None: ...
def digit_run(raw: bytes, n: int, /) -> bool: ...
