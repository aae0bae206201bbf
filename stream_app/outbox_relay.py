"""The outbox relay: sends what stage 2 committed to SQL (retraining triggers) onwards.

Stage 2 never publishes. It commits a window's rows and the triggers the window fired in
one transaction (:mod:`stream_app.sql_writer`); the relay, a timer in every worker, then

1. claims a batch of unsent rows from each outbox source (a lease: no other relay sends
   them meanwhile, see :mod:`storage.outbox`),
2. sends each one (a retraining trigger to the retrain-triggers topic, acknowledged by the
   broker), and
3. marks it sent, in a transaction of its own.

So a trigger cannot be published without being stored (nothing publishes but the relay,
and it reads stored rows), nor stored and never published (an unsent row stays unsent until
a relay sends it, after any crash or restart). What can happen is sending twice: a relay
that dies between 2 and 3, or whose lease ran out while the broker was slow, leaves a sent
row unmarked, and it is sent again. Trigger ids are deterministic, so consumers of the
retrain-triggers topic drop a trigger whose ``trigger_id`` they have seen.

A source is anything with ``claim`` and ``mark_sent`` (:class:`OutboxSource`), paired with
the coroutine that sends its messages; alerts (Slack, e-mail) are meant to become a second
source over the ``alerts`` table with their own sender. A send that fails is logged and
the rest of that source waits for the next round: its leases run out and the rows are
claimed again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from schemas.outbound import RetrainTrigger
from storage import repository
from storage.outbox import lease_owner
from stream_app.counters import Counters
from stream_app.sql_writer import Transactions

log = logging.getLogger(__name__)

RELAY_INTERVAL_SECONDS = 1.0
LEASE_SECONDS = 30.0
BATCH = 100


@dataclass(frozen=True)
class OutboxMessage:
    """One row to send: its id (for marking and deduplication), a key and a payload."""

    id: str
    key: bytes | None
    value: bytes


class OutboxSource(Protocol):
    """One outbox table, as the relay sees it."""

    name: str

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[OutboxMessage]:
        """Lease up to ``limit`` unsent rows to ``owner``; oldest first."""
        ...

    async def mark_sent(self, message_id: str) -> None:
        """Record that the row was sent (a row sent twice keeps its first time)."""
        ...


Send = Callable[[OutboxMessage], Awaitable[None]]


class SqlTriggerOutbox:
    """Retraining triggers waiting in ``retrain_triggers`` (``published_at`` NULL)."""

    name = "retraining triggers"

    def __init__(self, transactions: Transactions) -> None:
        self.transactions = transactions

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[OutboxMessage]:
        def work(session: Session) -> list[repository.TriggerRecord]:
            return repository.unpublished_triggers(
                session, limit, claim_for=owner, lease_seconds=lease_seconds
            )

        return [trigger_message(record) for record in await self.transactions.run(work)]

    async def mark_sent(self, message_id: str) -> None:
        await self.transactions.run(
            lambda session: repository.mark_trigger_published(session, message_id)
        )


def trigger_message(record: repository.TriggerRow) -> OutboxMessage:
    """The Kafka message of a stored trigger: keyed by model, the trigger as JSON."""
    trigger = RetrainTrigger(
        trigger_id=record.trigger_id,
        model_id=record.model_id,
        model_version=record.model_version or "",
        reason=record.reason,
        evidence=record.evidence,
        window_start=record.window_start,
        window_end=record.window_end,
        created_at=record.created_at,
        data_start=record.data_start,
        data_end=record.data_end,
    )
    return OutboxMessage(record.trigger_id, record.model_id.encode(), trigger.to_json_bytes())


class OutboxRelay:
    """Sends every source's unsent rows; call :meth:`run_once` periodically."""

    def __init__(
        self,
        routes: Sequence[tuple[OutboxSource, Send]],
        *,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        batch: int = BATCH,
        counters: Counters | None = None,
    ) -> None:
        self.routes = list(routes)
        self.owner = owner or lease_owner()
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.counters = counters

    async def tick(self) -> None:
        """:meth:`run_once` for a timer: an error is logged, and the next tick tries again."""
        try:
            await self.run_once()
        except Exception:
            # Not an outage (run_once waits those out): a bug or a schema problem. Stopping
            # the worker would not publish anything either; the rows stay in the outbox.
            log.exception("the outbox relay failed; it tries again on its next tick")

    async def run_once(self) -> int:
        """One round over every source; return how many messages were sent.

        A source with a full batch is claimed again at once, so a backlog drains in one
        round. Waits (without end) while the database is unreachable.
        """
        sent = 0
        for source, send in self.routes:
            while True:
                messages = await source.claim(self.owner, self.lease_seconds, self.batch)
                done = await self._send_all(source, send, messages)
                sent += done
                if done < len(messages) or len(messages) < self.batch:
                    break
        return sent

    async def _send_all(
        self, source: OutboxSource, send: Send, messages: list[OutboxMessage]
    ) -> int:
        for done, message in enumerate(messages):
            try:
                await send(message)
            except Exception as error:  # the broker, a webhook: anything may fail here
                log.warning(
                    "could not send %s %s (%s: %s); it is sent again once its lease of %.0f s "
                    "runs out",
                    source.name,
                    message.id,
                    type(error).__name__,
                    error,
                    self.lease_seconds,
                )
                return done
            # After the send: a crash in between sends it again, never not at all.
            await source.mark_sent(message.id)
            if self.counters is not None:
                self.counters.outbox_sent += 1
        return len(messages)
