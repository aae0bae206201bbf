"""A local HTTP server that answers like Slack, for the demo and the integration tests.

It speaks the two ways Driftline posts to Slack:

- an incoming webhook, ``POST /services/{team}/{bot}/{secret}``: answers ``200 ok``
  (``invalid_payload`` with 400 for a body that is not JSON);
- the Web API's ``POST /api/chat.postMessage``: answers
  ``{"ok": true, "channel": ..., "ts": ...}``, or Slack's ``ok: false`` errors:
  ``not_authed`` without a bearer token, ``invalid_auth`` for a token other than the one
  the sink was given, ``channel_not_found`` for a channel outside ``channels`` (when given).

Every request is kept in :attr:`SlackSink.received` (what came, what was answered, when);
:attr:`SlackSink.delivered` are those Slack would have shown. Faults can be scripted while
it runs, from any thread: :meth:`SlackSink.fail` queues answers (429 with ``Retry-After``,
500, 503, or an ``ok: false`` error), :meth:`SlackSink.set_latency` slows every answer and
:meth:`SlackSink.set_down` answers 500 to everything until cleared.

The server listens on 127.0.0.1, on a free port, on a thread of its own with its own event
loop, so it serves a synchronous caller (the demo) and an asyncio test alike::

    with SlackSink(token="xoxb-local") as slack:
        notifier = SlackBotNotifier("xoxb-local", "#drift", base_url=slack.base_url)
        ...
        assert slack.delivered[0].body["channel"] == "#drift"
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

# The body of a webhook's answer, and the error of a Web API answer, for a scripted status.
WEBHOOK_TEXTS = {
    400: "invalid_payload",
    403: "action_prohibited",
    404: "no_service",
    410: "channel_is_archived",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
API_ERRORS = {
    400: "invalid_arguments",
    401: "not_authed",
    403: "invalid_auth",
    404: "unknown_method",
    429: "ratelimited",
    500: "internal_error",
    503: "service_unavailable",
}


@dataclass(frozen=True)
class SlackRequest:
    """One request the sink received, and what it answered."""

    kind: Literal["webhook", "bot"]
    path: str
    body: dict[str, Any]
    status: int  # the HTTP status answered
    received_at: float  # time.monotonic() on arrival
    error: str | None = None  # the Slack error answered (``ok: false`` or a webhook's text)

    @property
    def delivered(self) -> bool:
        """Whether Slack would have shown the message."""
        return self.status == 200 and self.error is None


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: float | None
    error: str | None


class SlackSink:
    """Answers like Slack on ``http://127.0.0.1:<port>``; see the module's docstring.

    ``token``: the bot token ``chat.postMessage`` must be sent with (any, if None).
    ``channels``: the channels that exist (any, if None).
    """

    def __init__(self, *, token: str | None = None, channels: Iterable[str] | None = None):
        self._token = token
        self._channels = None if channels is None else frozenset(channels)
        self._lock = threading.Lock()
        self._received: list[SlackRequest] = []
        self._faults: collections.deque[_Fault] = collections.deque()
        self._latency = 0.0
        self._down = False
        self._ts = itertools.count(1)
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    # -- the server's life

    def start(self) -> SlackSink:
        """Starts serving (on a thread of its own); returns once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the Slack sink is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            app = web.Application()
            app.router.add_post("/services/{team}/{bot}/{secret}", self._webhook)
            app.router.add_post("/api/chat.postMessage", self._post_message)
            # A handler is cancelled when its client goes away (a timed-out notifier), and
            # stopping waits at most a second for the ones still answering.
            runner = web.AppRunner(
                app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
            )
            try:
                await runner.setup()
                await web.SockSite(runner, sock).start()
            except BaseException as error:
                failure.append(error)
                ready.set()
                await runner.cleanup()
                raise
            ready.set()
            try:
                await self._stopping.wait()
            finally:
                await runner.cleanup()

        def run() -> None:
            try:
                asyncio.run(serve())
            except BaseException:  # already reported to start() or the server stopped
                pass
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="slack-sink", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or failure:
            self.stop()
            cause = failure[0] if failure else None
            raise RuntimeError("the Slack sink did not start") from cause
        return self

    def stop(self) -> None:
        """Stops serving and frees the port; what was received stays readable."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        self._thread = self._loop = self._stopping = None

    def __enter__(self) -> SlackSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where to post

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Slack sink has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The server's root, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url_webhook(self) -> str:
        """An incoming webhook's URL (its secret path is made up: any one is accepted)."""
        return f"{self.url}/services/T0LOCAL00/B0LOCAL00/local-webhook-secret"

    @property
    def base_url(self) -> str:
        """The Web API's base URL, for ``AsyncWebClient(base_url=...)``."""
        return f"{self.url}/api/"

    # -- what it received

    @property
    def received(self) -> list[SlackRequest]:
        """Every request, in the order they arrived (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def delivered(self) -> list[SlackRequest]:
        """The requests answered with success: the messages Slack would have shown."""
        return [request for request in self.received if request.delivered]

    # -- faults

    def fail(
        self,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        *,
        error: str | None = None,
    ) -> None:
        """Answers the next ``times`` requests with ``status`` instead of success.

        ``retry_after`` (seconds) is sent as ``Retry-After``, rounded up to whole seconds as
        Slack sends it. ``error`` is the Slack error to answer, the default following the
        status (``ratelimited`` for 429, ``internal_error`` for 500, …); with status 200 it
        is a Web API ``ok: false`` (``fail(200, error="not_in_channel")``).
        """
        with self._lock:
            self._faults.extend(_Fault(status, retry_after, error) for _ in range(times))

    def set_latency(self, seconds: float) -> None:
        """Delays every answer by ``seconds`` (0: answer at once)."""
        with self._lock:
            self._latency = seconds

    def set_down(self, down: bool = True) -> None:
        """Answers 500 to every request while ``down``."""
        with self._lock:
            self._down = down

    # -- the handlers

    def _scripted(self) -> tuple[_Fault | None, float]:
        """The fault to answer the request now arriving with, if any, and the latency."""
        with self._lock:
            if self._down:
                return _Fault(500, None, None), self._latency
            return (self._faults.popleft() if self._faults else None), self._latency

    async def _webhook(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        fault, latency = self._scripted()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if fault is not None:
            status, text = fault.status, fault.error or WEBHOOK_TEXTS.get(fault.status, "error")
        elif not isinstance(body, dict):
            status, text = 400, "invalid_payload"
        else:
            status, text = 200, "ok"
        error = None if (status, text) == (200, "ok") else text
        self._record("webhook", request, body, status, arrived, error)
        return await self._answer(latency, fault, web.Response(status=status, text=text))

    async def _post_message(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        fault, latency = self._scripted()
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = {}
        else:
            body = {key: str(value) for key, value in (await request.post()).items()}
        body = body if isinstance(body, dict) else {}
        auth = request.headers.get("Authorization", "")
        channel = body.get("channel")
        if fault is not None:
            status, error = fault.status, fault.error or API_ERRORS.get(fault.status, "error")
        elif not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            status, error = 200, "not_authed"
        elif self._token is not None and auth[len("Bearer ") :].strip() != self._token:
            status, error = 200, "invalid_auth"
        elif not channel or (self._channels is not None and channel not in self._channels):
            status, error = 200, "channel_not_found"
        elif not body.get("text") and not body.get("blocks"):
            status, error = 200, "no_text"
        else:
            status, error = 200, None
        self._record("bot", request, body, status, arrived, error)
        if error is None:
            ts = f"{time.time():.0f}.{next(self._ts):06d}"
            answer = {"ok": True, "channel": channel, "ts": ts}
        else:
            answer = {"ok": False, "error": error}
        return await self._answer(latency, fault, web.json_response(answer, status=status))

    def _record(
        self,
        kind: Literal["webhook", "bot"],
        request: web.Request,
        body: object,
        status: int,
        arrived: float,
        error: str | None,
    ) -> None:
        body = body if isinstance(body, dict) else {}
        with self._lock:
            self._received.append(SlackRequest(kind, request.path, body, status, arrived, error))

    @staticmethod
    async def _answer(latency: float, fault: _Fault | None, response: web.Response) -> web.Response:
        if fault is not None and fault.retry_after is not None:
            response.headers["Retry-After"] = str(math.ceil(fault.retry_after))
        if latency > 0:
            await asyncio.sleep(latency)
        return response
