"""The e-mail notifier against a real SMTP server in the process (driftline.sinks.smtp):
plain, STARTTLS and implicit TLS, a login, and the replies a relay must tell apart (451,
550, a wrong password, nobody listening)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
from dataclasses import replace
from typing import Any, Literal

import pytest

from alerting.notifiers import AlertLine, DeliveryError, Notification
from alerting.notifiers.email import EmailNotifier, SmtpSettings, message_id_of, subject_of
from driftline.sinks.smtp import PERMANENT_FAILURE, ReceivedMail, SmtpSink

USER, PASSWORD = "driftline", "s3cr3t-Passw0rd"
RECIPIENTS = ("oncall@example.com", "ml-team@example.com")
ALERTS = (
    AlertLine(
        severity="critical",
        model="churn",
        version="3",
        window="2026-11-01 00:00–01:00 UTC",
        subject="income",
        summary="income drifted (psi 0.31 > 0.2)",
        link="http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z",
    ),
    AlertLine(
        severity="warning",
        model="churn",
        version="3",
        window="2026-11-01 00:00–01:00 UTC",
        subject="region",
        summary="region drifted (psi 0.25 > 0.2)",
    ),
)
NOTE = Notification(
    title="churn v3: 2 features drifted",
    lines=("income drifted (psi 0.31 > 0.2)", "region drifted (psi 0.25 > 0.2)"),
    link="http://127.0.0.1:8000/models/churn/windows/2026-11-01T00:00:00Z",
    fields={"model": "churn", "window": "2026-11-01 00:00–01:00"},
    alerts=ALERTS,
    key="outbox-42",
)


def settings(sink: SmtpSink | None = None, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": sink.port if sink else 25,
        "sender": "Driftline <driftline@example.com>",
        "recipients": RECIPIENTS,
        "security": "none",
        "timeout": 3,
        "ca_file": sink.ca_file if sink else None,
    }
    values.update(overrides)
    return SmtpSettings(**values)


def send(config: SmtpSettings, note: Notification = NOTE) -> DeliveryError | None:
    """Sends one notification, bounded; returns the DeliveryError it raised, if any."""

    async def run() -> DeliveryError | None:
        try:
            await asyncio.wait_for(EmailNotifier(config).send(note), timeout=8)
        except DeliveryError as error:
            return error
        return None

    return asyncio.run(run())


def rows(mail: ReceivedMail) -> list[str]:
    assert mail.html is not None
    body = mail.html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>.*?</tr>", body)


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_a_notification_reaches_two_recipients_as_text_and_html(
    status: Literal["firing", "resolved"],
) -> None:
    note = replace(NOTE, status=status)
    with SmtpSink() as sink:
        assert send(settings(sink), note) is None
    [mail] = sink.messages
    assert mail.sender == "driftline@example.com"
    assert mail.recipients == RECIPIENTS
    assert mail.subject == f"[driftline] [{status.upper()}] churn v3: 2 features drifted"
    assert mail.headers["To"] == ", ".join(RECIPIENTS)
    assert mail.headers["Message-ID"] == "<outbox-42@driftline>"
    assert mail.headers["X-Driftline-Key"] == "outbox-42"
    assert mail.text.startswith("churn v3: 2 features drifted")
    for line in NOTE.lines:
        assert line in mail.text
    assert "model: churn" in mail.text and "window: 2026-11-01 00:00–01:00" in mail.text
    assert NOTE.link is not None and NOTE.link in mail.text
    table = rows(mail)
    assert len(table) == len(ALERTS)
    assert "critical" in table[0] and f'<a href="{ALERTS[0].link}">income</a>' in table[0]
    assert "region drifted" in table[1] and "<a " not in table[1], "no link, no anchor"


def test_starttls_with_a_login_the_server_requires() -> None:
    with SmtpSink(tls="starttls", auth=(USER, PASSWORD)) as sink:
        secure = settings(sink, security="starttls")
        anonymous = send(secure)
        assert isinstance(anonymous, DeliveryError) and not anonymous.retryable
        assert "530" in str(anonymous) and not sink.messages, "the sink wants a login"
        assert send(settings(sink, security="starttls", username=USER, password=PASSWORD)) is None
    [mail] = sink.messages
    assert mail.subject.endswith(NOTE.title)


def test_implicit_tls_with_a_login() -> None:
    with SmtpSink(tls="implicit", auth=(USER, PASSWORD)) as sink:
        config = settings(sink, security="tls", username=USER, password=PASSWORD)
        assert send(config) is None
    assert len(sink.messages) == 1


def test_a_wrong_password_is_not_retryable_and_never_shown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-" + PASSWORD
    with SmtpSink(auth=(USER, PASSWORD)) as sink:
        error = send(settings(sink, username=USER, password=wrong))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "535" in str(error) and "password" in str(error), "says what to check"
    assert error.__cause__ is None and error.__suppress_context__
    for text in (str(error), repr(error), caplog.text):
        assert wrong not in text and PASSWORD not in text
    assert base64.b64encode(wrong.encode()).decode() not in str(error)
    assert all(wrong not in record.getMessage() for record in caplog.records)
    assert PASSWORD not in repr(settings(sink, username=USER, password=PASSWORD))
    assert not sink.messages


def test_a_temporary_refusal_is_retryable_and_a_retry_delivers() -> None:
    with SmtpSink(fail_next=1) as sink:
        error = send(settings(sink))
        assert isinstance(error, DeliveryError) and error.retryable
        assert "451" in str(error)
        assert sink.attempts == 1 and not sink.messages
        assert send(settings(sink)) is None
    assert sink.attempts == 2 and len(sink.messages) == 1


def test_a_permanent_refusal_is_not_retryable() -> None:
    with SmtpSink() as sink:
        sink.fail(1, PERMANENT_FAILURE)
        error = send(settings(sink))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "550" in str(error) and not sink.messages


def test_refused_recipients(caplog: pytest.LogCaptureFixture) -> None:
    with SmtpSink(refuse=RECIPIENTS) as sink:
        error = send(settings(sink))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "recipient" in str(error) and RECIPIENTS[0] in str(error)
    with SmtpSink(refuse=RECIPIENTS[:1]) as sink:
        assert send(settings(sink)) is None, "the other recipient has it: no retry"
    assert sink.messages[0].recipients == RECIPIENTS[1:]
    [warning] = [r for r in caplog.records if r.name == "alerting.notifiers.email"]
    assert warning.levelno == logging.WARNING and RECIPIENTS[0] in warning.getMessage()


def test_nothing_listening_is_retryable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # free, and closed once the block ends
    error = send(settings(port=port, username=USER, password=PASSWORD))
    assert isinstance(error, DeliveryError) and error.retryable
    assert "check the SMTP host and port" in str(error)
    assert PASSWORD not in str(error)


def test_a_certificate_nobody_vouched_for_is_not_retryable() -> None:
    with SmtpSink(tls="implicit") as sink:
        error = send(settings(sink, security="tls", ca_file=None))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "certificate" in str(error) and not sink.messages


def test_starttls_asked_of_a_server_without_it_is_not_retryable() -> None:
    with SmtpSink() as sink:
        error = send(settings(sink, security="starttls"))
    assert isinstance(error, DeliveryError) and not error.retryable
    assert "STARTTLS" in str(error) and "security setting" in str(error)


def test_two_hundred_alerts_make_fifty_rows_and_a_count() -> None:
    alerts = tuple(
        AlertLine("warning", "churn", "3", "w", f"feature_{i}", f"feature_{i} drifted")
        for i in range(200)
    )
    many = Notification(title="churn v3: 200 features drifted", alerts=alerts, key="k")
    with SmtpSink() as sink:
        assert send(settings(sink), many) is None
    table = rows(sink.messages[0])
    assert len(table) == 51
    assert "feature_49 drifted" in table[49] and "feature_50" not in "".join(table)
    assert "… and 150 more" in table[50]


def test_feature_names_are_escaped() -> None:
    evil = "<script>alert(1)</script>"
    alert = AlertLine("warning", "churn", "3", "w", evil, f"{evil} drifted", "javascript:alert(1)")
    note = Notification(
        title=f"{evil} drifted", lines=(f"{evil} drifted",), fields={evil: evil}, alerts=(alert,)
    )
    with SmtpSink() as sink:
        assert send(settings(sink), note) is None
    [mail] = sink.messages
    assert mail.html is not None and "<script>" not in mail.html
    assert mail.html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 6
    assert "javascript:" not in mail.html, "only web links are linked"
    assert evil in mail.text and "Message-ID" not in mail.headers, "no key, no Message-ID"


def test_the_subject_is_one_line_of_bounded_length() -> None:
    note = Notification(title="a\nb\r\n" + "x" * 400, status="resolved")
    subject = subject_of(note)
    assert subject.startswith("[driftline] [RESOLVED] a b x")
    assert len(subject) == 200 and subject.endswith("…")


def test_message_ids_are_safe_and_distinct() -> None:
    assert message_id_of("outbox-42") == "<outbox-42@driftline>"
    odd = [message_id_of(key) for key in ("outbox:42", "outbox/42", "<@>", "a b")]
    assert len(set(odd)) == len(odd)
    for message_id in odd:
        assert re.fullmatch(r"<[A-Za-z0-9_+=.-]+@driftline>", message_id), message_id
