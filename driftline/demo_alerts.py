"""The demo's alert side: a local Slack-speaking server, a local SMTP server, the routing
file that points the worker's alert relay at them, and a printout of what they received."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from driftline.local.worker_process import wait_for
from driftline.sinks.slack import SlackSink
from driftline.sinks.smtp import SmtpSink

WEBHOOK_VARIABLE = "DRIFTLINE_DEMO_SLACK_WEBHOOK"
RULES = {"rules": [{"name": "feature-drift", "kind": "feature_drift"}], "labels": {"team": "ml"}}


@dataclass
class DemoSinks:
    slack: SlackSink
    smtp: SmtpSink
    routing_file: Path

    def wait(self, count: int, timeout: float = 60) -> None:
        """Until both sinks received ``count`` messages."""

        def arrived() -> bool:
            return len(self.slack.delivered) >= count and len(self.smtp.messages) >= count

        wait_for(arrived, timeout, f"{count} alert message(s) in Slack and by e-mail")

    def report(self, out: TextIO, first: int = 0) -> None:
        """Print the Slack messages and e-mails from the ``first`` one on."""
        for request in self.slack.delivered[first:]:
            out.write(f"\n  Slack  | {request.body['text'].splitlines()[0]}\n")
            for line in request.body["text"].splitlines()[1:]:
                out.write(f"         |   {line}\n")
        for mail in self.smtp.messages[first:]:
            out.write(f"  e-mail | to {', '.join(mail.recipients)}: {mail.subject}\n")


@contextmanager
def demo_sinks(workdir: Path, say: Callable[[str], None]) -> Iterator[DemoSinks]:
    with SlackSink() as slack, SmtpSink() as smtp:
        os.environ[WEBHOOK_VARIABLE] = slack.url_webhook  # the worker reads it at start
        path = workdir / "alerts.yaml"
        path.write_text(routing(smtp.port))
        say(
            f"alerts go to a local Slack webhook (port {slack.port}) and a local SMTP server "
            f"(port {smtp.port}); routing: {path}"
        )
        try:
            yield DemoSinks(slack, smtp, path)
        finally:
            os.environ.pop(WEBHOOK_VARIABLE, None)


def routing(smtp_port: int) -> str:
    return textwrap.dedent(
        f"""\
        # The demo's alert routing (see the README, "Alerts"). Secrets come from the
        # environment: {WEBHOOK_VARIABLE} holds the (local) webhook URL.
        dashboard_url: http://127.0.0.1:8000/dashboard
        route:
          receiver: ml-team
          group_by: [model]
          group_wait: 0s
          group_interval: 2s
          repeat_interval: 1h
        receivers:
          - name: ml-team
            slack:
              - webhook_url_env: {WEBHOOK_VARIABLE}
            email:
              - to: [ml-team@example.com]
                from: driftline@example.com
                host: 127.0.0.1
                port: {smtp_port}
                security: none
        """
    )
