"""A local SMTP server that keeps what it receives, for the demo and the e-mail tests.

:class:`SmtpSink` runs aiosmtpd's threaded controller on 127.0.0.1 (port 0: a free port,
bound before the server starts, so there is no race for it), which works the same from
synchronous code (the demo) and from inside an asyncio test: the server has its own thread
and event loop. Each message delivered becomes a :class:`ReceivedMail` in ``.messages``.

It can play the parts a notifier must cope with:

* ``auth=(user, password)``: MAIL is refused (530) until the client has logged in with
  AUTH LOGIN or PLAIN; a wrong password is answered 535.
* ``tls="starttls"`` or ``"implicit"``: a self-signed certificate for 127.0.0.1 and
  localhost, made with the ``openssl`` command line into a temporary directory; clients
  trust it through ``.ca_file``. With STARTTLS the server refuses mail (and AUTH) until the
  connection is encrypted.
* ``fail_next=N`` or :meth:`SmtpSink.fail`: the next N messages are answered with a
  temporary ``451`` (or any reply given, such as :data:`PERMANENT_FAILURE`) and not kept.
* ``refuse=("a@example.com",)``: those recipients are refused at RCPT with a ``550``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hmac
import logging
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Collection
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
TEMPORARY_FAILURE = "451 4.3.0 try again later"
PERMANENT_FAILURE = "550 5.7.1 message refused"
RECIPIENT_REFUSED = "550 5.1.1 no such mailbox"
AUTH_REQUIRED = "530 5.7.0 authentication required"

OPENSSL_REQ = "openssl req -x509 -days 2 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
# A self-signed certificate that is its own CA, acceptable to Python's default client
# context (hostname 127.0.0.1 or localhost), independent of the system's openssl.cnf.
OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = 127.0.0.1
[v3]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def _not_deprecation_noise(record: logging.LogRecord) -> bool:
    # aiosmtpd 1.4 warns of its own deprecated Session.login_data on every successful AUTH.
    return "login_data is deprecated" not in record.getMessage()


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted."""

    sender: str  # the envelope sender (MAIL FROM)
    recipients: tuple[str, ...]  # the envelope recipients (RCPT TO) that were accepted
    subject: str
    text: str  # the text/plain part ("" if none)
    html: str | None  # the text/html part
    headers: dict[str, str]  # the top-level headers, decoded
    received_at: float  # time.monotonic()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Writes a certificate and its key for 127.0.0.1/localhost; returns (cert, key)."""
    config, cert, key = directory / "openssl.cnf", directory / "cert.pem", directory / "key.pem"
    config.write_text(OPENSSL_CONFIG)
    subprocess.run(
        [*OPENSSL_REQ.split(), "-config", str(config), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def parse(sender: str, recipients: tuple[str, ...], content: bytes) -> ReceivedMail:
    message = BytesParser(policy=email.policy.default).parsebytes(content)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return ReceivedMail(
        sender=sender,
        recipients=recipients,
        subject=str(message.get("Subject", "")),
        text=text.get_content() if isinstance(text, EmailMessage) else "",
        html=html.get_content() if isinstance(html, EmailMessage) else None,
        headers={name: str(value) for name, value in message.items()},
        received_at=time.monotonic(),
    )


class _Handler:
    """aiosmtpd's hooks; they run on the sink's thread."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._sink.auth is not None and not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._sink.refuse:
            return RECIPIENT_REFUSED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        return self._sink._deliver(envelope)


class _BoundController(Controller):
    """aiosmtpd's threaded controller, serving a socket bound beforehand."""

    def __init__(self, handler: _Handler, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname=HOST, port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps the messages it accepts.

    ``with SmtpSink() as sink:`` starts and stops it; ``sink.host``/``sink.port`` are where
    to deliver, ``sink.ca_file`` the certificate to trust when ``tls`` is on (it is deleted
    on stop). ``port`` may name a fixed port, to restart a sink where it was.
    """

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        tls: Literal["none", "starttls", "implicit"] = "none",
        fail_next: int = 0,
        refuse: Collection[str] = (),
        port: int = 0,
    ) -> None:
        self.auth = auth
        self.tls = tls
        self.refuse = frozenset(address.lower() for address in refuse)
        self.host = HOST
        self.port = port
        self.ca_file: str | None = None
        self.messages: list[ReceivedMail] = []
        self.attempts = 0  # messages offered (DATA), accepted or not
        self._lock = threading.Condition()
        self._failures: list[str] = [TEMPORARY_FAILURE] * fail_next
        self._controller: _BoundController | None = None
        self._directory: Path | None = None

    def fail(self, count: int = 1, reply: str = TEMPORARY_FAILURE) -> None:
        """Answers the next ``count`` messages with ``reply`` (e.g. a 451, or a 550)."""
        with self._lock:
            self._failures.extend([reply] * count)

    def wait_for(self, count: int, timeout: float = 10) -> list[ReceivedMail]:
        """Blocks until ``count`` messages have arrived (or the timeout); returns them all."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def start(self) -> SmtpSink:
        if self._controller is not None:
            raise RuntimeError("the SMTP sink is already running")
        aiosmtpd_log = logging.getLogger("mail.log")
        if _not_deprecation_noise not in aiosmtpd_log.filters:
            aiosmtpd_log.addFilter(_not_deprecation_noise)
        sock = socket.create_server((HOST, self.port))
        try:
            self.port = sock.getsockname()[1]
            kwargs: dict[str, Any] = {
                "server_hostname": "driftline-sink",
                "ready_timeout": 10.0,
                # AUTH is offered before STARTTLS only on a connection that stays plain
                # (tls="none") or is encrypted from the start (tls="implicit").
                "auth_require_tls": self.tls == "starttls",
            }
            if self.auth is not None:
                kwargs["auth_callback"] = self._check_password
            if self.tls != "none":
                context = self._server_tls_context()
                if self.tls == "starttls":
                    kwargs.update(tls_context=context, require_starttls=True)
                else:
                    kwargs.update(ssl_context=context)
            controller = _BoundController(_Handler(self), sock, **kwargs)
        except BaseException:
            sock.close()
            self._remove_certificate()
            raise
        try:
            controller.start()
        except BaseException:
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)  # its thread, if it got that far
            sock.close()
            self._remove_certificate()
            raise
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        self._remove_certificate()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _server_tls_context(self) -> ssl.SSLContext:
        self._directory = Path(tempfile.mkdtemp(prefix="driftline-smtp-sink-"))
        cert, key = self_signed_certificate(self._directory)
        self.ca_file = str(cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    def _remove_certificate(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None
            self.ca_file = None

    def _check_password(self, mechanism: str, login: bytes, password: bytes) -> bool:
        assert self.auth is not None
        user, secret = self.auth
        return hmac.compare_digest(login, user.encode()) and hmac.compare_digest(
            password, secret.encode()
        )

    def _deliver(self, envelope: Envelope) -> str:
        with self._lock:
            self.attempts += 1
            if self._failures:
                return self._failures.pop(0)
        content = envelope.original_content or b""
        mail = parse(envelope.mail_from or "", tuple(envelope.rcpt_tos), content)
        with self._lock:
            self.messages.append(mail)
            self._lock.notify_all()
        return "250 OK"
