"""Registering a model and profiling its reference: what the CLI, the HTTP API and the
worker's baselines share.

It depends on ``detectors``, ``schemas``, ``storage`` and ``driftline.errors`` only, so the
API can profile an uploaded reference without importing the worker (``stream_app``).
"""

from registration.models import profile_for_model, register_model, store_profile
from registration.profiling import profile_reference

__all__ = ["profile_for_model", "profile_reference", "register_model", "store_profile"]
