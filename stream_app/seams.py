"""How the modules that rely on a library's private internals notice that they changed.

Each such module keeps a table ``{qualified name: (function, sha256 of its source, why it
is relied on)}`` written against the pinned version, and refuses to run when a source
differs (``stream_app/fetch_events.py`` for faust-streaming, ``fetch_columns.py`` for
aiokafka).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from typing import Any

Seam = Mapping[str, tuple[Any, str, str]]


def source_digest(function: Any) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def changed_internals(seam: Seam) -> list[str]:
    """Each internal whose source differs from the one written against, with why it is
    relied on (empty: none)."""
    return [
        f"{name} ({why})"
        for name, (function, digest, why) in seam.items()
        if source_digest(function) != digest
    ]
