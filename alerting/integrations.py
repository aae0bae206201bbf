"""The notifiers of each receiver, with their secrets read from the environment or files.

Secrets are read once, when the relay starts, so a missing one stops it at once with a
message naming the receiver and the variable or file (never the value), instead of
failing at the first alert hours later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from alerting.notifiers import Notifier
from alerting.notifiers.email import EmailNotifier, SmtpSettings
from alerting.notifiers.slack import SlackBotNotifier, SlackWebhookNotifier
from driftline.errors import ConfigurationError
from schemas.alert_routing import EmailSpec, ReceiverSpec, SlackSpec

Integrations = dict[str, dict[str, Notifier]]  # receiver -> integration id -> notifier


def secret(env: str | None, file: str | None, what: str, environ: Mapping[str, str]) -> str:
    """The secret in environment variable ``env`` or file ``file``; errors name, not show."""
    if env is not None:
        value = environ.get(env, "").strip()
        if not value:
            raise ConfigurationError(f"{what}: the environment variable {env} is not set or empty")
        return value
    if file is not None:
        try:
            value = Path(file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigurationError(f"{what}: cannot read {file}: {error.strerror}") from None
        except UnicodeDecodeError:  # its message would quote a byte of the secret
            raise ConfigurationError(f"{what}: {file} is not UTF-8 text") from None
        if not value:
            raise ConfigurationError(f"{what}: {file} is empty")
        return value
    raise ConfigurationError(f"{what}: no secret given")


def build_integrations(
    receivers: Mapping[str, ReceiverSpec], environ: Mapping[str, str] | None = None
) -> Integrations:
    """Every receiver's notifiers, by integration id (``slack[0]``, ``email[1]``)."""
    env = os.environ if environ is None else environ
    built: Integrations = {}
    for name, receiver in receivers.items():
        found: dict[str, Notifier] = {}
        for index, slack in enumerate(receiver.slack):
            found[f"slack[{index}]"] = _slack(slack, f"receiver {name!r} slack[{index}]", env)
        for index, email in enumerate(receiver.email):
            found[f"email[{index}]"] = _email(email, f"receiver {name!r} email[{index}]", env)
        built[name] = found
    return built


def _slack(spec: SlackSpec, what: str, env: Mapping[str, str]) -> Notifier:
    if spec.webhook_url_env is not None or spec.webhook_url_file is not None:
        url = secret(spec.webhook_url_env, spec.webhook_url_file, f"{what} webhook URL", env)
        return SlackWebhookNotifier(url)
    token = secret(spec.token_env, spec.token_file, f"{what} bot token", env)
    assert spec.channel is not None  # the schema requires it with a token
    return SlackBotNotifier(token, spec.channel, base_url=spec.api_url)


def _email(spec: EmailSpec, what: str, env: Mapping[str, str]) -> Notifier:
    password = None
    if spec.username is not None:
        password = secret(spec.password_env, spec.password_file, f"{what} SMTP password", env)
    settings = SmtpSettings(
        host=spec.host,
        port=spec.port,
        sender=spec.sender,
        recipients=tuple(spec.to),
        security=spec.security,
        username=spec.username,
        password=password,
        ca_file=spec.ca_file,
    )
    try:
        return EmailNotifier(settings)  # loads ca_file now
    except OSError as error:  # ssl.SSLError is one too
        raise ConfigurationError(f"{what}: cannot use ca_file {spec.ca_file}: {error}") from None
