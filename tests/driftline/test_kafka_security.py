"""The Kafka connection settings: read from DRIFTLINE_KAFKA_* (secrets from files too),
checked together, never shown; aiokafka's options; the one-line explanations.
(tests/integration/test_kafka_security.py connects with them to a secured broker.)"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from driftline.errors import ConfigurationError
from driftline.kafka_security import KafkaSecurity, bootstrap_of, explain

SASL = {
    "DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "DRIFTLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "DRIFTLINE_KAFKA_SASL_USERNAME": "svc",
}


def test_plaintext_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTLINE_KAFKA_"):
            monkeypatch.delenv(name)
    security = KafkaSecurity.load()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.ssl_context() is None


def test_a_password_from_a_file_is_used_and_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")
    for name, value in {**SASL, "DRIFTLINE_KAFKA_SASL_PASSWORD_FILE": str(secret)}.items():
        monkeypatch.setenv(name, value)
    security = KafkaSecurity.load()
    options = security.client_options()
    assert options["sasl_plain_password"] == "s3cret-value"  # the newline is not part of it
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname
    for shown in (repr(security), str(security), security.describe()):
        assert "s3cret" not in shown


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        (SASL, "needs sasl_mechanism, sasl_username and sasl_password"),
        ({"DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "DRIFTLINE_KAFKA_SECURITY_PROTOCOL"),
        ({"DRIFTLINE_KAFKA_SASL_MECHANISM": "PLAIN"}, "use SASL_SSL"),
        (
            {"DRIFTLINE_KAFKA_SECURITY_PROTOCOL": "SSL", "DRIFTLINE_KAFKA_SSL_CERT_FILE": "c.pem"},
            "ssl_cert_file and ssl_key_file go together",
        ),
        (
            {**SASL, "DRIFTLINE_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"},
            "sasl_password_file: cannot read /nonexistent/password",
        ),
    ],
)
def test_settings_that_do_not_go_together_are_named(
    settings: dict[str, str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match="Kafka connection settings") as caught:
        KafkaSecurity.load()
    assert says in str(caught.value)


def test_an_unreadable_ca_file_is_named() -> None:
    security = KafkaSecurity(security_protocol="SSL", ssl_ca_file=Path("/nonexistent/ca.pem"))
    with pytest.raises(ConfigurationError, match="DRIFTLINE_KAFKA_SSL_CA_FILE"):
        security.ssl_context()


def test_explanations_name_the_setting_to_check() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=SecretStr("p"),
    )
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"
    assert "DRIFTLINE_KAFKA_SSL_CA_FILE" in explain(untrusted, security, "h:1")
    refused = RuntimeError("SaslAuthenticationFailed: Authentication failed")
    assert "DRIFTLINE_KAFKA_SASL_PASSWORD" in explain(refused, security, "h:1")
    assert "DRIFTLINE_KAFKA_SECURITY_PROTOCOL" in explain(TimeoutError(), security, "h:1")
    assert bootstrap_of("kafka://a:1;kafka://b:2") == "a:1,b:2"


def test_the_worker_config_file_sets_them_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stream_app.settings import load_settings

    for name in list(os.environ):
        if name.startswith("DRIFTLINE_KAFKA_") or name == "DRIFTLINE_CONFIG":
            monkeypatch.delenv(name)
    config = tmp_path / "worker.toml"
    config.write_text(
        'kafka_security_protocol = "SASL_SSL"\nkafka_sasl_mechanism = "PLAIN"\n'
        'kafka_sasl_username = "from-file"\nkafka_sasl_password = "pw"\n'
    )
    security = load_settings(config).kafka_security()
    assert (security.security_protocol, security.sasl_username) == ("SASL_SSL", "from-file")
    monkeypatch.setenv("DRIFTLINE_KAFKA_SASL_USERNAME", "from-env")
    assert load_settings(config).kafka_security().sasl_username == "from-env"
