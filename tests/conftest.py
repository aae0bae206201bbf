"""Shared test settings: hypothesis profiles (CI is derandomized so a run is repeatable)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
# make test-unit, the inner loop: fewer examples where a test does not ask for its own number
# (make test runs the ci profile's 100).
settings.register_profile("unit", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Fixtures that start the real services (Kafka broker, PostgreSQL) live in tests/services.py.
pytest_plugins = ["tests.services"]
