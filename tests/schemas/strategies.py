"""Hypothesis strategies for the inputs the fast paths find hard: integers beyond 64 bits
and strings that are not UTF-8 once encoded.

Text strategies here may hold a placeholder character; :func:`corrupt` replaces its UTF-8
bytes in an encoded message by a sequence that is not UTF-8, so a bad byte can land in any
string (ids, versions, feature names, categories) of any message.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from schemas.values import INT_MAX, INT_MIN

PLACEHOLDER = "\ue000"
_PLACEHOLDER_BYTES = PLACEHOLDER.encode()

BAD_UTF8 = st.sampled_from(
    [
        b"\xff",  # never in UTF-8
        b"\xc3",  # a lead byte without its continuation
        b"\xe2\x82",  # cut short
        b"\xc0\xaf",  # overlong
        b"\xed\xa0\x80",  # a surrogate
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
        _PLACEHOLDER_BYTES,  # left as it is: valid
    ]
)
"""Byte sequences that :func:`corrupt` puts where the placeholder was."""

wide_integers = st.integers(INT_MAX + 1, 2**80) | st.integers(-(2**80), INT_MIN - 1)
"""Integers a JSON event may not carry: they do not fit in 64 bits."""


def text(**kwargs: Any) -> st.SearchStrategy[str]:
    """Like ``st.text(**kwargs)``, sometimes with the placeholder in it."""
    return st.text(st.characters(codec="utf-8") | st.just(PLACEHOLDER), **kwargs)


def corrupt(raw: bytes, bad: bytes) -> bytes:
    """``raw`` with each placeholder (written unescaped) replaced by ``bad``."""
    return raw.replace(_PLACEHOLDER_BYTES, bad)
