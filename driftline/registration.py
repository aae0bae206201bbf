"""Moved to the top-level package :mod:`registration` (so the HTTP API can profile a
reference without importing the worker). Kept for ``tests/faults/stream.py``, which still
imports ``profile_reference`` from here; import from :mod:`registration` instead.
"""

from registration import profile_reference, register_model

__all__ = ["profile_reference", "register_model"]
