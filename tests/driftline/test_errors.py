"""The error hierarchy: one root, value-shaped branches are ValueErrors too."""

from __future__ import annotations

import pytest

from detectors.registry import UnknownDetectorError
from detectors.window import UnknownFeatureError
from driftline import errors


@pytest.mark.parametrize(
    ("error", "is_value_error"),
    [
        (errors.ConfigurationError, True),
        (errors.InvalidInputError, True),
        (errors.InvalidEventError, True),
        (errors.ProfileError, True),
        (errors.IncompatibleStateError, True),
        (errors.DeliveryError, False),
        (errors.RetryableDeliveryError, False),
        (errors.ServiceError, False),
        (UnknownDetectorError, True),
        (UnknownFeatureError, True),
    ],
)
def test_every_error_has_the_one_root(error: type[Exception], is_value_error: bool) -> None:
    assert issubclass(error, errors.DriftlineError)
    assert issubclass(error, ValueError) is is_value_error


def test_retryable_delivery_carries_retry_after() -> None:
    error = errors.RetryableDeliveryError("slack said 429", retry_after=3.0)
    assert error.retry_after == 3.0 and "429" in str(error)
    assert issubclass(errors.RetryableDeliveryError, errors.DeliveryError)
