"""How every Driftline client connects to Kafka: plaintext, TLS, mutual TLS or SASL.

One set of settings, ``DRIFTLINE_KAFKA_*`` (or the same keys in a worker's config file),
serves the worker (Faust's ``broker_credentials``), the producer helper, the topic and
admin tools, ``driftline replay`` and ``flush``, and the API's readiness check:

==============================  ==============================================================
``security_protocol``           ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``
``ssl_ca_file``                 CA bundle (PEM) that signed the brokers' certificates (default:
                                the system's)
``ssl_cert_file``,              the client's certificate and key (PEM) for mutual TLS;
``ssl_key_file``,               ``ssl_key_password`` (or ``ssl_key_password_file``) if the key is
``ssl_key_password``            encrypted
``ssl_check_hostname``          ``true`` (default): the broker's certificate must name its host
``sasl_mechanism``              ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``
``sasl_username``,              the SASL credentials; the password may come from a file
``sasl_password``               (``sasl_password_file``, e.g. a mounted secret)
==============================  ==============================================================

Secrets are ``SecretStr``: never in ``repr``, logs or error messages. :func:`explain` turns
what a bad setting makes the client raise into one line naming the cause and the setting.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.errors import ConfigurationError

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
ENV = "DRIFTLINE_KAFKA_"


class KafkaSecurity(BaseSettings):
    """The connection settings (see the module's table)."""

    model_config = SettingsConfigDict(env_prefix=ENV, extra="ignore")

    security_protocol: Protocol = "PLAINTEXT"
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        for field in ("ssl_key_password", "sasl_password"):
            path = getattr(self, f"{field}_file")
            if path is not None:
                if getattr(self, field) is not None:
                    raise ValueError(f"{field} and {field}_file: give one of them")
                try:
                    secret = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as error:
                    raise ValueError(
                        f"{field}_file: cannot read {path} ({error.strerror})"
                    ) from None
                object.__setattr__(self, field, SecretStr(secret))
        sasl = self.security_protocol.startswith("SASL_")
        if sasl and not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_username and sasl_password (or sasl_password_file)"
            )
        if not sasl and self.sasl_mechanism:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol is {self.security_protocol}; "
                "use SASL_SSL (or SASL_PLAINTEXT)"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("ssl_cert_file and ssl_key_file go together (mutual TLS)")
        return self

    @classmethod
    def load(cls, **overrides: Any) -> KafkaSecurity:
        """From ``DRIFTLINE_KAFKA_*`` (and ``overrides``); a ConfigurationError naming every
        bad setting."""
        try:
            return cls(**overrides)
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV}{'_'.join(str(p) for p in e['loc']).upper() or ''}: {_reason(e)}"
                if e["loc"]
                else _reason(e)
                for e in error.errors(include_url=False, include_input=False)
            )
            raise ConfigurationError(f"Kafka connection settings: {problems}") from None

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every connection (None without TLS)."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None
            )
            if self.ssl_cert_file is not None and self.ssl_key_file is not None:
                password = self.ssl_key_password
                context.load_cert_chain(
                    str(self.ssl_cert_file),
                    str(self.ssl_key_file),
                    password.get_secret_value() if password else None,
                )
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"Kafka TLS files: {_ssl_reason(error)}; check {ENV}SSL_CA_FILE, "
                f"{ENV}SSL_CERT_FILE, {ENV}SSL_KEY_FILE (and {ENV}SSL_KEY_PASSWORD)"
            ) from None
        context.check_hostname = self.ssl_check_hostname
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.sasl_mechanism is not None:
            assert self.sasl_password is not None  # _complete checked it
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return options

    def describe(self) -> str:
        """What a log line may say about the connection: no secret."""
        parts: list[str] = [self.security_protocol]
        if self.sasl_mechanism:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username}")
        if self.ssl_cert_file:
            parts.append("client certificate")
        return ", ".join(parts)


def _reason(error: Any) -> str:
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ")


def _ssl_reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror or error} ({error.filename})"
    return str(error) or type(error).__name__


def explain(error: BaseException, security: KafkaSecurity, bootstrap: str) -> str:
    """One line for a failure to connect: the likely cause and the setting to check."""
    text = f"{type(error).__name__}: {error}"
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            if "hostname" in str(cause).lower() or "IP address mismatch" in str(cause):
                return (
                    f"the certificate of {bootstrap} does not name that host "
                    f"({cause.verify_message}); connect by a name the certificate has, or set "
                    f"{ENV}SSL_CHECK_HOSTNAME=false "
                    "only for a test broker"
                )
            return (
                f"the certificate of {bootstrap} is not trusted ({cause.verify_message}); "
                f"set {ENV}SSL_CA_FILE to the CA that signed it"
            )
        if isinstance(cause, ssl.SSLError):
            return (
                f"TLS with {bootstrap} failed ({cause.reason or cause}); check "
                f"{ENV}SECURITY_PROTOCOL and the listener's port"
            )
    lowered = text.lower()
    if isinstance(error, TimeoutError) or "timeout" in lowered:
        return (
            f"{bootstrap} did not answer within the time allowed ({security.describe()}); is "
            f"the broker running, and is this the listener for {ENV}SECURITY_PROTOCOL="
            f"{security.security_protocol} (a TLS listener waits for a handshake a client "
            "without TLS never starts)?"
        )
    if "authentication" in lowered or "sasl" in lowered:
        return (
            f"{bootstrap} refused the SASL login of {security.sasl_username!r} "
            f"({security.sasl_mechanism}); check {ENV}SASL_USERNAME, {ENV}SASL_PASSWORD "
            f"(or _FILE) and {ENV}SASL_MECHANISM"
        )
    return (
        f"cannot talk to {bootstrap} with {security.describe()} ({text}); is the broker "
        f"running, and is this the listener for {ENV}SECURITY_PROTOCOL="
        f"{security.security_protocol}?"
    )


def bootstrap_of(broker: str) -> str:
    """``host:port,…`` from a Faust broker URL (``kafka://h:p;kafka://h2:p``).

    >>> bootstrap_of("kafka://a:9093;kafka://b:9093")
    'a:9093,b:9093'
    """
    parts = (p.strip().split("://", 1)[-1].strip("/") for p in broker.replace(";", ",").split(","))
    return ",".join(p for p in parts if p)


async def connection_problem(
    bootstrap: str, security: KafkaSecurity, timeout: float = 20.0
) -> str | None:
    """None when a client with ``security`` reaches a broker at ``bootstrap`` within
    ``timeout``; else the one line :func:`explain` gives.

    One connection of aiokafka's own (``create_conn``) to the first bootstrap address: its
    clients log why a bootstrap failed (a TLS or SASL error) and raise only "Unable to
    bootstrap", which names no cause.
    """
    import asyncio

    from aiokafka.conn import create_conn

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    options = security.client_options()
    try:
        async with asyncio.timeout(timeout):
            connection = await create_conn(
                host,
                int(port),
                request_timeout_ms=int(timeout * 1000),
                ssl_context=options.get("ssl_context"),
                security_protocol=security.security_protocol,
                sasl_mechanism=options.get("sasl_mechanism"),
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
            )
            connection.close()
        return None
    except Exception as error:  # what a bad setting makes aiokafka or ssl raise
        if _refused(error):
            return None  # nothing listens there yet: not a setting's fault
        return explain(error, security, bootstrap)


def _refused(error: BaseException) -> bool:
    return any(
        isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause)
        for cause in _causes(error)
    )


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from (aiokafka wraps the ssl and socket errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
