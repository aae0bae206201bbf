"""The alert relay: plans group notifications from the alerts in SQL, then delivers them.

Each round has two steps, both restartable at any point:

1. **Plan**, in one transaction under the planner lock (:func:`storage.notifications.lock_planner`):
   read the firing alerts, the silences in force and every group's last notice; decide
   which groups are due (:func:`alerting.grouping.plan`); write one notification row per
   due group and integration of its receiver, and the groups' new state. Two relays
   planning at once take turns, and the second sees what the first planned.
2. **Deliver**: claim the due notifications under a lease (the oldest undelivered one of
   each stream, so a group's messages keep their order), send them concurrently, and
   record every attempt. A retryable failure (Slack 429 or 5xx after slack-sdk's own
   retries, an SMTP 4xx, a broken connection) is tried again after an exponential backoff
   with full jitter, for as long as it takes; any other failure (a revoked webhook, a
   refused recipient) is marked failed and logged as an error, since retrying cannot help.

A restart resumes everything: notifications not yet delivered are rows, and a lease left
by a dead relay runs out. The one duplicate this allows is a relay that dies (or loses
its lease) between a successful send and recording it: that notification is sent again.
Its key (``receiver/group/seq``) is in the payload and, for e-mail, in the Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from alerting import grouping
from alerting.integrations import Integrations
from alerting.messages import notification_of
from alerting.notifiers import AlertLine, DeliveryError, Notification
from alerting.routing import Routing
from storage import alerts as alert_store
from storage import notifications as outbox
from storage.transactions import Transactions
from storage.types import utcnow

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
BATCH = 50
CONCURRENCY = 8
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


def retry_delay(attempts: int, rng: random.Random, cap: float = MAX_RETRY_SECONDS) -> float:
    """Full jitter: uniform in [0, min(cap, first · 2^attempts)] (attempts so far, from 0)."""
    return rng.uniform(0.0, min(cap, FIRST_RETRY_SECONDS * 2.0**attempts))


def payload_of(notification: Notification) -> dict[str, Any]:
    return asdict(notification)


def notification_from(payload: Mapping[str, Any]) -> Notification:
    data = dict(payload)
    data["lines"] = tuple(data.get("lines", ()))
    data["notes"] = tuple(data.get("notes", ()))  # rows written before notes: none
    data["alerts"] = tuple(AlertLine(**row) for row in data.get("alerts", ()))
    return Notification(**data)


class AlertRelay:
    """Plans and delivers notifications; call :meth:`tick` periodically."""

    def __init__(
        self,
        routing: Routing,
        transactions: Transactions,
        integrations: Integrations,
        *,
        owner: str,
        lease_seconds: float = LEASE_SECONDS,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
        clock: Callable[[], datetime] = utcnow,
        seed: int | None = None,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
    ) -> None:
        self.routing = routing
        self.transactions = transactions
        self.integrations = integrations
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._rng = random.Random(seed)
        self.max_retry_seconds = max_retry_seconds
        self.planned = 0
        self.sent = 0
        self.failed = 0
        self.retries = 0
        # Per (receiver, integration, outcome: sent / retried / failed), for the worker's
        # /metrics; the integrations come from the routing file, so the keys are bounded.
        self.deliveries: dict[tuple[str, str, str], int] = {}

    async def tick(self) -> None:
        """:meth:`run_once` for a timer: an error is logged, the next tick tries again."""
        try:
            await self.run_once()
        except Exception:
            # Not an outage (those are waited out): a bug or a schema problem. Nothing is
            # lost: what was not planned or delivered is still in the database.
            log.exception("the alert relay failed; it tries again on its next tick")

    async def run_once(self) -> int:
        """Plan, then deliver what is due; return how many notifications were delivered."""
        await self.plan()
        return await self.deliver()

    async def plan(self) -> int:
        """Write the notifications due now; return how many group notices were planned."""
        now = self.clock()
        planned = await self.transactions.run(lambda session: self._plan(session, now))
        self.planned += planned
        return planned

    def _plan(self, session: Session, now: datetime) -> int:
        outbox.lock_planner(session, now)
        firing = alert_store.firing_alerts(session)
        groups = {(g.receiver, g.group_key): g for g in outbox.load_groups(session)}
        told = {fingerprint for g in groups.values() for fingerprint in g.notified}
        known = {a.fingerprint: a for a in alert_store.get_alerts(session, told)}
        silences = alert_store.list_silences(session, active_at=now)
        states = {
            key: grouping.GroupState(
                g.receiver,
                g.group_key,
                dict(g.group_labels),
                g.first_seen_at,
                g.last_sent_at,
                tuple(g.notified),
                g.seq,
            )
            for key, g in groups.items()
        }
        decided = grouping.plan(firing, known, silences, states, self.routing, now)
        for state in decided.save:
            outbox.save_group(
                session,
                outbox.GroupRecord(
                    receiver=state.receiver,
                    group_key=state.group_key,
                    group_labels=state.group_labels,
                    first_seen_at=state.first_seen_at,
                    last_sent_at=state.last_sent_at,
                    notified=list(state.notified),
                    seq=state.seq,
                    updated_at=now,
                ),
            )
        for receiver, group_key in decided.forget:
            outbox.forget_group(session, receiver, group_key)
        for notice in decided.notices:
            self._add(session, notice, now)
        return len(decided.notices)

    def _add(self, session: Session, notice: grouping.Notice, now: datetime) -> None:
        message = notification_of(
            notice, dashboard_url=self.routing.dashboard_url, top_n=self.routing.top_n
        )
        group = notice.group
        for integration in self.integrations.get(group.receiver, {}):
            outbox.add_notification(
                session,
                outbox.NotificationRecord(
                    id=f"{message.key}/{integration}/{now.timestamp():.6f}",
                    receiver=group.receiver,
                    integration=integration,
                    group_key=group.group_key,
                    seq=group.seq,
                    status=notice.status,
                    payload=payload_of(message),
                    created_at=now,
                    sent_at=None,
                    failed_at=None,
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                ),
            )

    async def deliver(self, max_rounds: int = 20) -> int:
        """Send what is due, stream heads first, until nothing is due (bounded rounds)."""
        delivered = 0
        for _ in range(max_rounds):
            due = await self.transactions.run(self._claim)
            if not due:
                break
            results = await asyncio.gather(*(self._send(record) for record in due))
            delivered += sum(results)
            if not any(results):
                break  # everything due failed: the next tick tries again after backoff
        return delivered

    def _claim(self, session: Session) -> list[outbox.NotificationRecord]:
        return outbox.claim_due(
            session,
            owner=self.owner,
            now=self.clock(),
            lease_seconds=self.lease_seconds,
            limit=self.batch,
        )

    async def _send(self, record: outbox.NotificationRecord) -> bool:
        notifier = self.integrations.get(record.receiver, {}).get(record.integration)
        error: str | None = None
        retryable: bool | None = None
        async with self._limit:
            began = time.monotonic()  # the post's own time, not its wait for a slot
            try:
                if notifier is None:
                    raise DeliveryError(
                        f"receiver {record.receiver!r} has no integration {record.integration} "
                        "in the routing file any more",
                        retryable=False,
                    )
                await notifier.send(notification_from(record.payload))
            except DeliveryError as failure:
                error, retryable = str(failure), failure.retryable
            except Exception as failure:  # a bug in a notifier: keep it, try again later
                log.exception("notifier %s of %s failed", record.integration, record.receiver)
                error, retryable = f"{type(failure).__name__}: {failure}", True
        seconds = time.monotonic() - began
        retry_in = (
            retry_delay(record.attempts, self._rng, self.max_retry_seconds) if retryable else None
        )
        at = self.clock()

        def work(session: Session) -> None:
            outbox.record_attempt(
                session,
                record.id,
                owner=self.owner,
                at=at,
                seconds=seconds,
                error=error,
                retryable=retryable,
                retry_in=retry_in,
            )

        await self.transactions.run(work)
        outcome = "sent" if error is None else "retried" if retryable else "failed"
        channel = (record.receiver, record.integration, outcome)
        self.deliveries[channel] = self.deliveries.get(channel, 0) + 1
        if error is None:
            self.sent += 1
            return True
        where = f"{record.receiver}/{record.integration}"
        if retryable:
            self.retries += 1
            log.warning(
                "notification %s to %s not delivered (attempt %d): %s; retrying in %.1f s",
                record.id,
                where,
                record.attempts + 1,
                error,
                retry_in,
            )
        else:
            self.failed += 1
            log.error(
                "notification %s to %s failed for good: %s; fix the receiver in the routing "
                "file (it is not retried)",
                record.id,
                where,
                error,
            )
        return False
