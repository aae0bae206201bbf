"""Client-side calls to the local broker (aiokafka): is it serving, create topics.

aiokafka is imported inside the functions, so ``driftline`` commands that never talk to
Kafka do not pay for importing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from driftline.errors import ServiceError
from driftline.kafka_security import KafkaSecurity, explain
from driftline.limits import BROKER_MESSAGE_MAX_BYTES

_T = TypeVar("_T")


async def broker_serves(
    bootstrap: str, timeout: float, security: KafkaSecurity | None = None
) -> bool:
    """Whether a client can bootstrap from ``bootstrap`` and sees a broker in the metadata
    (``security``: how to connect; plaintext without it)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        **(security.client_options() if security else {}),
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


def create_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int = 1,
    *,
    timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> None:
    """Create ``names`` with ``partitions`` each; topics that already exist so are fine.

    Blocking; works from inside a running event loop too (it runs its own in a thread).
    """
    run_coroutine(
        create_topics_async(bootstrap, names, partitions, timeout=timeout, security=security)
    )


async def create_topics_async(
    bootstrap: str,
    names: Sequence[str],
    partitions: int = 1,
    *,
    timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> None:
    """:func:`create_topics` for callers already in an event loop."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    if partitions < 1:
        raise ServiceError(f"a topic needs at least 1 partition, not {partitions}")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        **(security.client_options() if security else {}),
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            # The size limit is set per topic too: a cluster whose brokers default to
            # another message.max.bytes still takes every message Driftline writes.
            configs = {"max.message.bytes": str(BROKER_MESSAGE_MAX_BYTES)}
            response = await admin.create_topics(
                [NewTopic(name, partitions, 1, topic_configs=configs) for name in names],
                timeout_ms=int(timeout * 1000),
            )
            for entry in response.topic_errors:
                topic, code = entry[0], entry[1]
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                    detail = entry[2] if len(entry) > 2 and entry[2] else f"error code {code}"
                    raise ServiceError(f"Kafka refused to create topic {topic!r}: {detail}")
            await _wait_for_leaders(admin, names, partitions)
    except TimeoutError:
        raise ServiceError(
            f"creating topics {', '.join(names)} on {bootstrap} took longer than {timeout:.0f} s; "
            "check the broker with `driftline local kafka status`"
        ) from None
    except (KafkaError, OSError) as error:
        if security is not None and security.security_protocol != "PLAINTEXT":
            raise ServiceError(explain(error, security, bootstrap)) from None
        raise ServiceError(
            f"cannot create topics on {bootstrap} ({error}); is the broker running? "
            "Start it with `driftline local kafka start`"
        ) from None
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, names: Sequence[str], partitions: int) -> None:
    # A new topic's partitions get leaders a moment after the create returns; a producer
    # started in between would see LEADER_NOT_AVAILABLE. The caller's timeout bounds this.
    while True:
        described = await admin.describe_topics(list(names))
        ready = True
        for topic in described:
            found = topic["partitions"]
            if topic["error_code"] == 0 and 0 < len(found) != partitions:
                raise ServiceError(
                    f"topic {topic['topic']!r} already exists with {len(found)} partitions, not "
                    f"{partitions}; delete it or use another name (a producer may have "
                    "auto-created it with 1 partition before create_topics ran)"
                )
            ready = ready and topic["error_code"] == 0 and len(found) == partitions
            ready = ready and all(partition["leader"] >= 0 for partition in found)
        if ready:
            return
        await asyncio.sleep(0.1)


def run_coroutine(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to completion on a fresh loop in a worker thread.

    A thread, so this works whether or not the caller is itself inside a running loop; the
    coroutines given here bound their own time.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def delete_topics_with_prefix(bootstrap: str, prefix: str, *, timeout: float = 30.0) -> int:
    """Delete every topic whose name starts with ``prefix``; returns how many.

    Benchmarks write gigabytes into throwaway topics; deleting them keeps the local broker's
    disk from filling up across runs.
    """
    return run_coroutine(_delete_topics_with_prefix(bootstrap, prefix, timeout))


async def _delete_topics_with_prefix(bootstrap: str, prefix: str, timeout: float) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    if not prefix:
        raise ServiceError("refusing to delete every topic: give a non-empty prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            names = [name for name in await admin.list_topics() if name.startswith(prefix)]
            if names:
                await admin.delete_topics(names, timeout_ms=int(timeout * 1000))
            return len(names)
    finally:
        await admin.close()
