"""Build the alert relay from a routing file: the one place the worker and ``driftline
alerts`` share, so both refuse a bad file or a missing secret the same way, at startup."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from alerting.dispatch import LEASE_SECONDS, MAX_RETRY_SECONDS, AlertRelay
from alerting.integrations import build_integrations
from alerting.routing import load_routing
from storage.outbox import lease_owner
from storage.transactions import Transactions


def build_alert_relay(
    routing_file: str | Path,
    sessions: sessionmaker[Session],
    *,
    environ: Mapping[str, str] | None = None,
    lease_seconds: float = LEASE_SECONDS,
    max_retry_seconds: float = MAX_RETRY_SECONDS,
) -> AlertRelay:
    """The relay of ``routing_file``.

    Raises
    ------
    ConfigurationError
        For a bad routing file (naming the key) or a secret that cannot be read (naming the
        variable or file, never the value).
    """
    routing = load_routing(routing_file)
    integrations = build_integrations(routing.receivers, environ)
    return AlertRelay(
        routing,
        Transactions(sessions, "the alert relay"),
        integrations,
        owner=lease_owner(),
        lease_seconds=lease_seconds,
        max_retry_seconds=max_retry_seconds,
    )
