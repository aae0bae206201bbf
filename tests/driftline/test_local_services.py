"""The local Kafka broker and PostgreSQL: their configuration (unit) and the real services."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from driftline.cli import main
from driftline.errors import ConfigurationError, ServiceError
from driftline.local import kafka, postgres
from driftline.local.kafka_client import delete_topics_with_prefix
from driftline.local.postgres import PostgresServer
from driftline.local.processes import run_command, tail

ROOT = Path(__file__).resolve().parents[2]


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


# --- configuration, nothing started ------------------------------------------------------


def test_server_properties_describe_a_single_kraft_node_on_loopback(tmp_path: Path) -> None:
    config = kafka.KafkaConfig(port=29500, run_dir=tmp_path / "kafka", cache_dir=tmp_path)
    settings = properties(kafka.render_server_properties(config))
    assert settings["process.roles"] == "broker,controller"
    assert settings["node.id"] == "1"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:29501"
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:29500,CONTROLLER://127.0.0.1:29501"
    assert settings["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29500"
    assert settings["controller.listener.names"] == "CONTROLLER"
    assert settings["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert settings["num.partitions"] == "1"
    assert settings["offsets.topic.replication.factor"] == "1"
    assert settings["transaction.state.log.replication.factor"] == "1"
    assert settings["transaction.state.log.min.isr"] == "1"
    assert settings["group.initial.rebalance.delay.ms"] == "0"
    assert settings["auto.create.topics.enable"] == "true"


def test_kafka_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DRIFTLINE_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DRIFTLINE_KAFKA_PORT", "29600")
    config = kafka.KafkaConfig.from_env()
    assert (config.port, config.controller_port, config.bootstrap) == (
        29600,
        29601,
        "127.0.0.1:29600",
    )
    assert config.properties_path == tmp_path / "run" / "kafka" / "server.properties"
    assert config.libs_dir == tmp_path / "cache" / f"kafka-{kafka.KAFKA_VERSION}" / "libs"
    assert kafka.KafkaConfig.from_env(29700).port == 29700  # an explicit port wins


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("DRIFTLINE_RUN_DIR", "DRIFTLINE_KAFKA_PORT", "DRIFTLINE_POSTGRES_PORT"):
        monkeypatch.delenv(variable, raising=False)
    assert kafka.KafkaConfig.from_env().port == 19092
    assert kafka.KafkaConfig.from_env().run_dir == Path.cwd() / "var" / "kafka"
    assert postgres.PostgresConfig.from_env().port == 15432


@pytest.mark.parametrize("value", ["abc", "80", "65535", "70000"])
def test_a_bad_kafka_port_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_PORT", value)
    with pytest.raises(ConfigurationError, match="DRIFTLINE_KAFKA_PORT"):
        kafka.KafkaConfig.from_env()


def test_cluster_ids_have_kafkas_shape() -> None:
    for _ in range(200):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_the_pom_pins_kafka_and_a_logging_binding() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ElementTree.fromstring(kafka.render_pom())
    found = {
        (
            d.findtext("m:artifactId", namespaces=namespace),
            d.findtext("m:version", namespaces=namespace),
        )
        for d in root.iterfind("m:dependencies/m:dependency", namespace)
    }
    assert ("kafka_2.13", "3.9.1") in found
    assert ("slf4j-reload4j", "1.7.36") in found


def test_postgresql_conf_listens_on_loopback_only(tmp_path: Path) -> None:
    config = postgres.PostgresConfig(port=25432, home=tmp_path / "postgres")
    conf = postgres.render_postgresql_conf(config)
    assert "listen_addresses = '127.0.0.1'" in conf
    assert f"unix_socket_directories = '{tmp_path / 'postgres' / 'socket'}'" in conf
    assert (
        postgres.database_url("t_x", 25432) == "postgresql+psycopg://postgres@127.0.0.1:25432/t_x"
    )


@pytest.mark.parametrize("name", ["", "Upper", "has-dash", "1digit", "x" * 64, "a;drop"])
def test_database_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigurationError, match="database name"):
        postgres.create_database(name, port=25432)


def test_postgres_home_moves_when_the_server_could_not_use_it(tmp_path: Path) -> None:
    too_long = tmp_path / ("x" * 120) / "postgres"  # the socket path would pass its limit
    assert str(postgres._home(too_long)).startswith("/var/tmp/driftline-postgres-")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    home = postgres._home(private / "postgres")
    if os.geteuid() == 0:  # the server runs as `postgres`, who cannot enter root's 0700 dir
        assert str(home).startswith("/var/tmp/driftline-postgres-")
        assert home == postgres._home(private / "postgres")  # stable: stop finds what start made
    else:
        assert home == private / "postgres"


def test_without_postgres_and_root_the_error_names_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "find_bin_dir", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ServiceError, match="apt-get install -y --no-install-recommends postgresql"):
        postgres.ensure_installed(report=lambda line: None)


def test_as_root_a_missing_server_is_installed_with_apt_get(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "apt-get"  # stands in for apt-get: records how it was called
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {calls}\necho "Setting up x"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    installed = iter([None, None, tmp_path / "15" / "bin"])  # before, under the lock, after
    monkeypatch.setattr(postgres, "find_bin_dir", lambda: next(installed))
    lines: list[str] = []
    assert postgres.ensure_installed(report=lines.append) == tmp_path / "15" / "bin"
    assert calls.read_text().splitlines() == [
        "noninteractive update",
        "noninteractive install -y --no-install-recommends postgresql",
    ]
    assert "  Setting up x" in lines and lines[-1].startswith("installed PostgreSQL 15 in ")


def test_a_failing_command_reports_its_output_and_exit_code() -> None:
    lines: list[str] = []
    with pytest.raises(ServiceError, match=r"exit 3"):
        run_command(["sh", "-c", "echo broken; exit 3"], timeout=10, what="x", report=lines.append)
    assert "  | broken" in lines
    began = time.monotonic()
    with pytest.raises(ServiceError, match="timed out after 0 s"):
        run_command(["sleep", "10"], timeout=0.3, what="sleeping", report=lines.append)
    assert time.monotonic() - began < 5


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 3) == ["line 97", "line 98", "line 99"]
    assert tail(tmp_path / "missing.log") == []


def test_status_of_services_not_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTLINE_RUN_DIR", str(tmp_path))
    assert main(["local", "status"]) == 3
    out = capsys.readouterr().out
    assert "kafka: not running" in out and "postgres: not running" in out


def test_cli_errors_are_one_line_without_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRIFTLINE_KAFKA_PORT", "not-a-port")
    assert main(["local", "kafka", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("driftline local: error: DRIFTLINE_KAFKA_PORT='not-a-port' is not a port")
    assert err.count("\n") == 1
    ran = subprocess.run(
        [sys.executable, "-m", "driftline", "local", "kafka", "start", "--port", "80"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    assert ran.stderr.strip().startswith("driftline local: error: --port 80 is outside")


def test_sqlite_url_is_a_fresh_database(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


# --- the real services -------------------------------------------------------------------


async def round_trip(bootstrap: str, topic: str, count: int) -> tuple[set[int], dict[bytes, int]]:
    """Partitions the producer wrote to, and each consumed value with its partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(topic, f"{i}".encode(), key=f"key-{i}".encode())
            for i in range(count)
        ]
        written = {metadata.partition for metadata in await asyncio.gather(*sent)}
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{topic}readers", auto_offset_reset="earliest"
    )
    await consumer.start()
    received: dict[bytes, int] = {}
    try:
        deadline = time.monotonic() + 30
        while len(received) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for partition, records in batches.items():
                received.update((record.value, partition.partition) for record in records)
    finally:
        await consumer.stop()
    return written, received


@pytest.mark.integration
def test_messages_round_trip_through_a_four_partition_topic(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}events"
    kafka.create_topics(kafka_bootstrap, [topic], partitions=4)
    written, received = asyncio.run(asyncio.wait_for(round_trip(kafka_bootstrap, topic, 200), 60))
    assert written == {0, 1, 2, 3}
    assert set(received) == {f"{i}".encode() for i in range(200)}
    assert set(received.values()) == {0, 1, 2, 3}


@pytest.mark.integration
def test_create_topics_is_idempotent_and_refuses_a_different_count(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    names = [f"{topic_prefix}a", f"{topic_prefix}b"]
    kafka.create_topics(kafka_bootstrap, names, partitions=3)
    kafka.create_topics(kafka_bootstrap, names, partitions=3)
    with pytest.raises(ServiceError, match="already exists with 3 partitions, not 2"):
        kafka.create_topics(kafka_bootstrap, names[:1], partitions=2)


@pytest.mark.integration
def test_topics_are_deleted_by_prefix_only(kafka_bootstrap: str, topic_prefix: str) -> None:
    doomed = [f"{topic_prefix}gone.a", f"{topic_prefix}gone.b"]
    kept = f"{topic_prefix}kept"
    kafka.create_topics(kafka_bootstrap, [*doomed, kept], partitions=1)
    assert delete_topics_with_prefix(kafka_bootstrap, f"{topic_prefix}gone.") == 2
    with pytest.raises(ServiceError, match="non-empty prefix"):
        delete_topics_with_prefix(kafka_bootstrap, "")

    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return {n for n in await admin.list_topics() if n.startswith(topic_prefix)}
        finally:
            await admin.close()

    deadline = time.monotonic() + 30  # deletion completes asynchronously on the broker
    while (found := asyncio.run(names())) != {kept} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert found == {kept}


@pytest.mark.integration
def test_starting_a_running_broker_returns_it(kafka_bootstrap: str) -> None:
    before = kafka.status()
    began = time.monotonic()
    again = kafka.start(report=lambda line: None)
    assert time.monotonic() - began < 5
    assert not again.started
    assert (again.pid, again.bootstrap) == (before.pid, kafka_bootstrap)


@pytest.mark.integration
def test_a_table_round_trips_through_a_fresh_postgres_database(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        metadata = sa.MetaData()
        rows = sa.Table(
            "rows",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("psi", sa.Float),
        )
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(rows.insert(), [{"id": 1, "psi": 0.25}, {"id": 2, "psi": 0.5}])
        with engine.connect() as connection:
            assert connection.execute(
                sa.select(rows.c.psi).order_by(rows.c.id)
            ).scalars().all() == [0.25, 0.5]
            assert (
                connection.execute(sa.text("SELECT version()"))
                .scalar_one()
                .startswith("PostgreSQL")
            )
    finally:
        engine.dispose()


@pytest.mark.integration
def test_starting_a_running_postgres_returns_it(postgres_server: PostgresServer) -> None:
    began = time.monotonic()
    again = postgres.start(report=lambda line: None)
    assert time.monotonic() - began < 5
    assert (again.pid, again.port, again.started) == (
        postgres_server.pid,
        postgres_server.port,
        False,
    )


@pytest.mark.integration
def test_dropping_a_database_closes_its_connections(postgres_server: PostgresServer) -> None:
    port = postgres_server.port
    postgres.create_database("t_dropped_check", port=port)
    with pytest.raises(ServiceError, match="already exists"):
        postgres.create_database("t_dropped_check", port=port)
    lingering = psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="t_dropped_check"
    )
    try:
        postgres.drop_database("t_dropped_check", port=port)  # must not wait for `lingering`
    finally:
        lingering.close()
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres") as admin:
        names = [row[0] for row in admin.execute("SELECT datname FROM pg_database")]
    assert "t_dropped_check" not in names
    postgres.drop_database("t_dropped_check", port=port)  # dropping what is gone is fine


@pytest.mark.integration
def test_cli_status_reports_both_services(
    kafka_bootstrap: str, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["local", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"kafka: running, pid {kafka.status().pid}, on {kafka_bootstrap}")
    assert lines[1].startswith(
        f"postgres: running, pid {postgres_server.pid}, on 127.0.0.1:{postgres_server.port}"
    )
    assert main(["local", "kafka", "status"]) == 0
    assert capsys.readouterr().out.startswith("kafka: running")
