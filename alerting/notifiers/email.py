"""E-mail over SMTP, with aiosmtplib: a text part and an HTML alternative with the alerts' table.

One connection per notification: STARTTLS (``security="starttls"``, port 587), implicit TLS
(``"tls"``, port 465) or a plain connection (``"none"``, a relay on a trusted network),
then AUTH when a username is set. The certificate is checked against the system's CAs, or
against ``ca_file`` for a private CA.

What a retry may fix, as Alertmanager's e-mail notifier decides: a server that cannot be
reached, times out or drops the connection, and any 4xx reply (``451 try again later``, a
greylisting ``421``/``450``, a temporary ``454`` at AUTH) raise a retryable
:class:`~alerting.notifiers.DeliveryError`. A 5xx reply (a refused sender or recipients, a
rejected message), failed authentication (``535``), a server that lacks what the settings
ask for (STARTTLS, AUTH), an invalid address and a TLS certificate or handshake failure
are not retryable: they need the settings or the server to change. A timeout after the
message was sent may mean it was delivered anyway; the ``Message-ID`` derived from the
notification's key lets mail clients recognise the copy a retry sends.

The password is the secret: it is never logged, never part of an error message (server
replies quoted in one are scrubbed of it), and the original exceptions are not chained.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from html import escape
from typing import Literal, TypeVar

import aiosmtplib

from alerting.notifiers import AlertLine, DeliveryError, Notification

logger = logging.getLogger(__name__)

SUBJECT_CHARS = 200
MAX_ROWS = 50  # rows of the HTML table of alerts; the rest are counted
REPLY_CHARS = 200  # of a server's reply quoted in an error
COLUMNS = ("severity", "model", "version", "window", "subject", "summary")
# A Message-ID's left part (RFC 5322 dot-atom-text, minus the characters mail tools mangle).
SAFE_ID = re.compile(r"[A-Za-z0-9_+=-]+(?:\.[A-Za-z0-9_+=-]+)*")
CHECK_ADDRESS = "check the SMTP host and port, and that the server is up"
CHECK_CREDENTIALS = "check the SMTP username and password (the Driftline secret that holds it)"
CHECK_SECURITY = (
    "check the security setting ('tls': implicit TLS, usually port 465; 'starttls': usually 587)"
)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send. ``password`` is the secret (kept out of ``repr``)."""

    host: str
    port: int
    sender: str  # the From address, "Driftline <alerts@example.com>" or a bare address
    recipients: tuple[str, ...]
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10  # per connection step, in seconds
    ca_file: str | None = None  # a CA bundle to trust instead of the system's
    subject_prefix: str = "[driftline]"

    def __post_init__(self) -> None:
        if isinstance(self.recipients, str) or not self.recipients:
            raise ValueError("SMTP recipients: a tuple of one or more addresses")
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError(f"SMTP security: 'starttls', 'tls' or 'none', not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port out of range: {self.port}")
        if (self.username is None) != (self.password is None):
            raise ValueError("SMTP username and password: both or neither")


def subject_of(notification: Notification, prefix: str = "[driftline]") -> str:
    """``[driftline] [FIRING] churn v3: 2 features drifted``, on one line, cut to a length."""
    status = f"[{notification.status.upper()}"
    # Titles that already say it ("[FIRING:3] churn …") are not tagged twice.
    tag = "" if notification.title.startswith(status) else status + "]"
    subject = " ".join(" ".join((prefix, tag, notification.title)).split())
    if len(subject) > SUBJECT_CHARS:
        subject = subject[: SUBJECT_CHARS - 1] + "…"
    return subject


def text_of(notification: Notification) -> str:
    """The text part: the title, the lines, the fields, the link."""
    parts = [notification.title]
    if lines := notification.text_lines():
        parts.append("\n".join(f"• {line}" for line in lines))
    if notification.fields:
        parts.append("\n".join(f"{key}: {value}" for key, value in notification.fields.items()))
    if notification.link:
        parts.append(f"The window in Driftline: {notification.link}")
    return "\n\n".join(parts) + "\n"


def _href(url: str | None) -> str | None:
    """A link target, escaped; only web and mail links (a ``javascript:`` one is not)."""
    if url and re.match(r"(?i)(https?|mailto):", url):
        return escape(url, quote=True)
    return None


def _linked(text: str, url: str | None) -> str:
    href = _href(url)
    return f'<a href="{href}">{escape(text)}</a>' if href else escape(text)


def _row(alert: AlertLine) -> str:
    cells = [escape(getattr(alert, column)) for column in COLUMNS]
    cells[COLUMNS.index("subject")] = _linked(alert.subject, alert.link)
    return "<tr>" + "".join(f"<td {CELL}>{cell}</td>" for cell in cells) + "</tr>"


CELL = 'style="border: 1px solid #ccc; padding: 4px 8px; text-align: left"'


def html_of(notification: Notification) -> str:
    """The HTML part: the text part's content plus a table of the alerts (50 rows at most)."""
    body = [f"<h2>{escape(notification.title)}</h2>"]
    if lines := notification.text_lines():
        body.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in lines) + "</ul>")
    if notification.alerts:
        head = "".join(f"<th {CELL}>{column}</th>" for column in COLUMNS)
        rows = [_row(alert) for alert in notification.alerts[:MAX_ROWS]]
        if len(notification.alerts) > MAX_ROWS:
            more = len(notification.alerts) - MAX_ROWS
            rows.append(f'<tr><td {CELL} colspan="{len(COLUMNS)}">… and {more} more</td></tr>')
        body.append(
            '<table style="border-collapse: collapse">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    if notification.fields:
        items = "".join(
            f"<li><b>{escape(key)}</b>: {escape(value)}</li>"
            for key, value in notification.fields.items()
        )
        body.append(f"<ul>{items}</ul>")
    if notification.link:
        body.append(f"<p>{_linked('The window in Driftline', notification.link)}</p>")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        f'<body style="font-family: sans-serif">{"".join(body)}</body></html>\n'
    )


def message_id_of(key: str) -> str:
    """``<{key}@driftline>``; a key with other characters is made safe and given a hash."""
    if SAFE_ID.fullmatch(key) and len(key) <= 200:
        return f"<{key}@driftline>"
    safe = ".".join(re.findall(r"[A-Za-z0-9_+=-]+", key))[:100]
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<{safe}.{digest}@driftline>" if safe else f"<{digest}@driftline>"


def message_of(notification: Notification, settings: SmtpSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject_of(notification, settings.subject_prefix)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(usegmt=True)
    if notification.key:
        message["Message-ID"] = message_id_of(notification.key)
        message["X-Driftline-Key"] = " ".join(notification.key.split())
    message.set_content(text_of(notification))
    message.add_alternative(html_of(notification), subtype="html")
    return message


class EmailNotifier:
    """Sends each notification as one e-mail to the settings' recipients.

    A ``ca_file`` that cannot be read fails here, when the notifier is made, not at a send.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._tls: ssl.SSLContext | None = None
        if settings.security != "none":
            self._tls = ssl.create_default_context(cafile=settings.ca_file)

    async def send(self, notification: Notification) -> None:
        settings = self._settings
        message = message_of(notification, settings)
        where = f"{settings.host}:{settings.port}"
        logger.debug(
            "e-mail %r to %d recipient(s) through %s (%s)",
            message["Subject"],
            len(settings.recipients),
            where,
            settings.security,
        )
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=parseaddr(settings.sender)[1] or settings.sender,
                recipients=list(settings.recipients),
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password,
                timeout=settings.timeout,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                tls_context=self._tls,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as error:
            failure = self._failure(error, where)
            logger.debug("e-mail through %s failed: %s", where, failure)
            raise failure from None
        if refused:
            # The others have it: a retry would send them a second copy.
            logger.warning(
                "e-mail through %s: recipients refused: %s",
                where,
                self._scrub(", ".join(f"{r} ({a.code} {a.message})" for r, a in refused.items())),
            )
        logger.info("e-mail %s sent through %s", message["Message-ID"] or "", where)

    def _failure(self, error: BaseException, where: str) -> DeliveryError:
        certificate = _cause(error, ssl.SSLCertVerificationError)
        if certificate is not None:
            return DeliveryError(
                f"the TLS certificate of the SMTP server at {where} was not accepted "
                f"({certificate.verify_message}): check the host name the certificate is "
                "for, or the CA bundle (ca_file) that signed it",
                retryable=False,
            )
        handshake = _cause(error, ssl.SSLError)
        if handshake is not None:
            return DeliveryError(
                f"TLS with the SMTP server at {where} failed ({handshake.reason}): "
                + CHECK_SECURITY,
                retryable=False,
            )
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            codes = [refusal.code for refusal in error.recipients]
            refusals = ", ".join(
                f"{refusal.recipient} ({refusal.code} {refusal.message})"
                for refusal in error.recipients
            )
            return DeliveryError(
                f"the SMTP server at {where} refused every recipient: {self._scrub(refusals)}"
                ": check the recipient addresses",
                retryable=all(400 <= code < 500 for code in codes),
            )
        if isinstance(error, aiosmtplib.SMTPResponseException):
            return self._reply_failure(error, where)
        if isinstance(error, aiosmtplib.SMTPNotSupported):
            return DeliveryError(
                f"the SMTP server at {where} does not support {error.message}", retryable=False
            )
        if isinstance(error, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
            return DeliveryError(
                f"the SMTP server at {where} did not answer in time ({type(error).__name__}): "
                + CHECK_ADDRESS,
                retryable=True,
            )
        if isinstance(error, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected)):
            return DeliveryError(
                f"the SMTP server at {where} is unreachable or hung up "
                f"({type(error).__name__}: {self._scrub(error.message)}): " + CHECK_ADDRESS,
                retryable=True,
            )
        if isinstance(error, OSError):
            return DeliveryError(
                f"the SMTP server at {where} is unreachable ({type(error).__name__}: "
                f"{self._scrub(error.strerror or str(error))}): " + CHECK_ADDRESS,
                retryable=True,
            )
        if isinstance(error, ValueError):
            return DeliveryError(
                f"the e-mail could not be addressed ({self._scrub(str(error))}): "
                "check the sender and recipient addresses",
                retryable=False,
            )
        # What aiosmtplib raises bare: STARTTLS or AUTH not offered by the server.
        message = error.message if isinstance(error, aiosmtplib.SMTPException) else ""
        return DeliveryError(
            f"the SMTP server at {where} cannot do what the settings ask "
            f"({self._scrub(message)}): {CHECK_SECURITY}, and whether it takes a login",
            retryable=False,
        )

    def _reply_failure(self, error: aiosmtplib.SMTPResponseException, where: str) -> DeliveryError:
        reply = f"{error.code} {self._scrub(error.message)}"
        retryable = 400 <= error.code < 500
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            hint = CHECK_CREDENTIALS
        elif error.code == 530:  # "authentication required", "must issue STARTTLS first"
            hint = f"the server wants a login or encryption first: {CHECK_SECURITY}"
        elif isinstance(error, aiosmtplib.SMTPSenderRefused):
            hint = "check the sender address, and whether the server requires a login"
        elif isinstance(error, aiosmtplib.SMTPDataError):
            hint = "the server refused the message"
            if retryable:
                hint += " for now; it may take it later"
        elif retryable:
            hint = "the server may take it later"
        else:
            hint = "check the SMTP settings against what the server expects"
        return DeliveryError(
            f"the SMTP server at {where} answered {reply}: {hint}", retryable=retryable
        )

    def _scrub(self, text: str) -> str:
        """A server's words, cut short, without the password (plain or base64) in them."""
        text = text.replace("\r", " ").replace("\n", " ")[:REPLY_CHARS]
        password = self._settings.password
        if password:
            secret = password.encode()
            forms = [password, base64.b64encode(secret).decode()]
            user = (self._settings.username or "").encode()
            forms.append(base64.b64encode(b"\0" + user + b"\0" + secret).decode())
            for form in forms:
                text = text.replace(form, "***")
        return text


E = TypeVar("E", bound=BaseException)


def _cause(error: BaseException, kind: type[E]) -> E | None:
    """``error`` or the first exception it was raised from that is a ``kind``."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
