"""The local broker's secured listeners: TLS material, the listener settings, the SCRAM user.

``driftline local kafka start --secure`` (or ``DRIFTLINE_KAFKA_SECURE=true``) adds two
listeners to the plaintext one on ``port``:

- ``port + 2``: SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN;
- ``port + 3``: TLS with a client certificate required (mutual TLS);
- ``port + 4`` on 127.0.0.2: TLS whose certificate does not name that address (to see a
  client refuse a host-name mismatch).

On first use ``openssl`` makes, under ``<run dir>/kafka/tls``: a CA (``ca.pem``), the
broker's certificate for ``localhost`` and ``127.0.0.1`` (``server.pem``, key and chain, as
Kafka's PEM keystore reads it), a client certificate and key (``client.pem``,
``client.key``) and the SASL password of user ``driftline`` (``sasl-password``, mode 0600).
The SCRAM credentials are set through the plaintext listener once the broker serves
(Kafka's ``ConfigCommand``; setting them again changes nothing).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from driftline.errors import ServiceError
from driftline.local.environment import Report
from driftline.local.processes import run_command

SASL_USER = "driftline"
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


def sasl_ssl_port(port: int) -> int:
    return port + 2


def mtls_port(port: int) -> int:
    return port + 3


# A TLS listener on another loopback address, which the broker's certificate does not
# name: what a client checking host names must refuse (the hostname-mismatch test).
UNNAMED_HOST = "127.0.0.2"


def unnamed_port(port: int) -> int:
    return port + 4


def ensure_material(tls_dir: Path, report: Report) -> None:
    """The CA, the broker's and a client's certificates and the SASL password (once)."""
    if (tls_dir / "server.pem").exists() and (tls_dir / "sasl-password").exists():
        return
    if shutil.which("openssl") is None:
        raise ServiceError(
            "the secured listeners need `openssl` to make their certificates; run "
            "`apt-get install -y openssl` and try again"
        )
    tls_dir.mkdir(parents=True, exist_ok=True)
    report(f"making the local broker's TLS certificates in {tls_dir} (openssl)")

    def openssl(*args: str) -> None:
        run_command(["openssl", *args], timeout=60, what="openssl", report=report)

    ca_key, ca = tls_dir / "ca.key", tls_dir / "ca.pem"
    openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key)),
        *("-out", str(ca), "-days", "3650", "-subj", "/CN=driftline local CA"),
    )
    for name, subject, names in (
        ("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "/CN=driftline-client", "extendedKeyUsage=clientAuth"),
    ):
        key, request, cert = (tls_dir / f"{name}.{s}" for s in ("key", "csr", "crt"))
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(request),
            "-subj",
            subject,
        )
        extensions = tls_dir / f"{name}.ext"
        extensions.write_text(names + "\n")
        openssl(
            *("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key)),
            *("-CAcreateserial", "-out", str(cert), "-days", "3650", "-extfile", str(extensions)),
        )
    # Kafka's PEM keystore: the (PKCS#8) key, then the certificate.
    (tls_dir / "server.pem").write_text(
        (tls_dir / "server.key").read_text() + (tls_dir / "server.crt").read_text()
    )
    (tls_dir / "client.pem").write_text((tls_dir / "client.crt").read_text())
    password = tls_dir / "sasl-password"
    password.write_text(secrets.token_urlsafe(18) + "\n")
    os.chmod(password, 0o600)
    for private in ("ca.key", "server.key", "client.key", "server.pem"):
        os.chmod(tls_dir / private, 0o600)


def sasl_password(tls_dir: Path) -> str:
    return (tls_dir / "sasl-password").read_text().strip()


def listener_settings(host: str, port: int, tls_dir: Path) -> dict[str, str]:
    """server.properties entries of the two secured listeners (merged into the plaintext ones)."""
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{SASL_USER}="{sasl_password(tls_dir)}";'
    )
    return {
        "sasl.enabled.mechanisms": ",".join((*MECHANISMS, "PLAIN")),
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
        "listener.name.mtls.ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(tls_dir / "server.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(tls_dir / "ca.pem"),
    }


def add_scram_user(libs_dir: Path, bootstrap: str, tls_dir: Path, report: Report) -> None:
    """The SCRAM credentials of user ``driftline``, through the plaintext listener, one
    mechanism a request (Kafka refuses two changes of one user in one)."""
    password = sasl_password(tls_dir)
    for mechanism in MECHANISMS:
        try:
            run_command(
                [
                    *("java", "-cp", f"{libs_dir}/*", "kafka.admin.ConfigCommand"),
                    *("--bootstrap-server", bootstrap, "--alter", "--add-config"),
                    f"{mechanism}=[iterations=4096,password={password}]",
                    *("--entity-type", "users", "--entity-name", SASL_USER),
                ],
                timeout=120,
                what=f"setting the {mechanism} user of the local broker",
                report=report,
            )
        except ServiceError as error:  # its message shows the command: not the password
            raise ServiceError(str(error).replace(password, "***")) from None
