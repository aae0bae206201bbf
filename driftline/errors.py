"""The one error root of the project and its branches.

Every exception Driftline raises on purpose derives from :class:`DriftlineError`, so a
caller can catch ours without catching programming errors. The branches say what the
caller should do next:

- :class:`ConfigurationError`: fix the configuration and restart; retrying will not help.
- :class:`InvalidInputError`: the data handed in is wrong (an event goes to the
  dead-letter topic with the message as its reason); the process keeps running.
- :class:`IncompatibleStateError`: two pieces of state cannot be combined or read
  (different reference profile, unknown state version); rebuild the state.
- :class:`DeliveryError`: an alert or trigger could not be delivered;
  :class:`RetryableDeliveryError` says that trying again later may succeed.
- :class:`StorageUnavailableError`: the database cannot be reached right now; wait and
  retry, never acknowledge the input that needed it.
- :class:`ServiceError`: a local service (the Kafka broker, PostgreSQL) could not be
  installed, started or reached; the message says which command to run or which log to read.

The value-shaped errors also derive from :class:`ValueError`, so code written against
the standard library's conventions keeps working.
"""

from __future__ import annotations


class DriftlineError(Exception):
    """Root of every error Driftline raises on purpose."""


class ConfigurationError(DriftlineError, ValueError):
    """A setting, hyperparameter or model configuration is not allowed."""


class InvalidInputError(DriftlineError, ValueError):
    """Data handed to Driftline cannot be used as it is (wrong shape, type or content)."""


class InvalidEventError(InvalidInputError):
    """An event on a topic breaks its contract; it belongs in the dead-letter topic."""


class ProfileError(InvalidInputError):
    """A reference dataset cannot be profiled (e.g. an all-missing or mixed-type column)."""


class IncompatibleStateError(DriftlineError, ValueError):
    """Two states cannot be merged, or a stored state cannot be read by this version."""


class StorageUnavailableError(DriftlineError):
    """The database cannot be reached; not the fault of the data being processed.

    Input that needed it is not acknowledged: the caller waits and retries, or stops.
    """


class DeliveryError(DriftlineError):
    """An alert, notification or trigger could not be delivered."""


class RetryableDeliveryError(DeliveryError):
    """Delivery failed for a reason that may pass (HTTP 429 or 5xx, a timeout).

    Parameters
    ----------
    retry_after
        Seconds the receiver asked us to wait before the next attempt, if it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServiceError(DriftlineError):
    """A local service could not be installed, started, stopped or reached.

    Raised by :mod:`driftline.local`; the message names the log to read or the command to run.
    """
