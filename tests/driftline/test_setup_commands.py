"""``driftline db upgrade`` and ``driftline topics create``: the one-shot setup a deployment
runs before its workers (docker-compose.yml), each safe to run again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from driftline.cli import main
from schemas.topics import Topics
from storage.db import make_engine
from storage.migrate import current_revision, head_revision


def test_db_upgrade_migrates_once_then_says_it_is_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert f"migrated from nothing to {head_revision()}" in capsys.readouterr().out
    assert current_revision(make_engine(url)) == head_revision()
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert f"already at {head_revision()}" in capsys.readouterr().out


async def partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


@pytest.mark.integration
def test_topics_create_makes_every_topic_with_its_partitions_and_can_run_again(
    kafka_bootstrap: str, topic_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "topics", "create", "--partitions", "3", "--stage2-partitions", "2",
        "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix,
    ]  # fmt: skip
    assert main(argv) == 0
    assert main(argv) == 0  # existing topics are kept
    out = capsys.readouterr().out
    assert "(3 partitions)" in out
    topics = Topics.with_prefix(topic_prefix)
    names = [
        topics.predictions, topics.labels, topics.label_join, topics.window_partials,
        topics.retrain_triggers, topics.dead_letter,
    ]  # fmt: skip
    found = asyncio.run(partitions(kafka_bootstrap, names))
    assert found == dict(zip(names, [3, 3, 3, 2, 1, 1], strict=True))


def test_a_bad_partition_count_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["topics", "create", "--partitions", "0", "--bootstrap", "127.0.0.1:9"]
    assert main(argv) == 2
    assert "--partitions must be at least 1" in capsys.readouterr().err
