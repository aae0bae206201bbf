"""Driftline on a secured Apache Kafka: SASL_SSL with SCRAM-SHA-512, and mutual TLS.

A broker of its own (``driftline local kafka start --secure``, another run directory and
ports): SASL_SSL on port + 2, mutual TLS on port + 3, certificates and the SCRAM user made
on first use. The whole pipeline runs over each (topics created by ``driftline topics
create``, predictions and labels from the producer helper, windows in SQL, a retraining
trigger and a dead letter read back from their topics), and each misconfiguration ends a
worker within a bounded time with one line naming the setting, no secret in any output.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftline.cli import main
from driftline.kafka_security import KafkaSecurity
from driftline.producer import PredictionProducer
from schemas.control import end_of_stream_message
from storage import history
from tests.integration.harness import WorkerProcess, final_windows, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("DRIFTLINE_SECURE_KAFKA_PORT", "19292"))
SASL_SSL, MTLS = f"127.0.0.1:{PORT + 2}", f"127.0.0.1:{PORT + 3}"
UNNAMED = f"127.0.0.2:{PORT + 4}"  # TLS; the broker's certificate does not name 127.0.0.2
WINDOWS, PER_WINDOW, DRIFT_FROM = 5, 150, 2


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A secured broker for this module; its TLS material's directory."""
    run = tmp_path_factory.mktemp("secure-kafka")
    env = {**os.environ, "DRIFTLINE_RUN_DIR": str(run), "DRIFTLINE_KAFKA_PORT": str(PORT)}
    command = [sys.executable, "-m", "driftline", "local", "kafka"]
    started = subprocess.run(
        [*command, "start", "--secure"], env=env, capture_output=True, text=True, timeout=240
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield run / "kafka" / "tls"
    finally:
        subprocess.run([*command, "stop"], env=env, capture_output=True, timeout=120)


def sasl(tls: Path, password_file: Path | None = None) -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "driftline",
        "KAFKA_SASL_PASSWORD_FILE": str(password_file or tls / "sasl-password"),
        "KAFKA_SSL_CA_FILE": str(tls / "ca.pem"),
    }


def mutual_tls(tls: Path) -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": str(tls / "ca.pem"),
        "KAFKA_SSL_CERT_FILE": str(tls / "client.pem"),
        "KAFKA_SSL_KEY_FILE": str(tls / "client.key"),
    }


def security_of(settings: dict[str, str]) -> KafkaSecurity:
    values: dict[str, Any] = {k.removeprefix("KAFKA_").lower(): v for k, v in settings.items()}
    return KafkaSecurity(**values)


async def read_all(bootstrap: str, topic: str, security: KafkaSecurity) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **security.client_options(),
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return [record for records in batches.values() for record in records]
    finally:
        await consumer.stop()


async def send(bootstrap: str, worker: WorkerProcess, security: KafkaSecurity) -> None:
    """The scenario's stream with drift and its labels, one broken message, the end."""
    events = list(scenario.events(WINDOWS, PER_WINDOW, DRIFT_FROM, decay_from=99))
    async with PredictionProducer(bootstrap, topics=worker.topics, security=security) as producer:
        for e in events:
            await producer.predict(
                scenario.MODEL_ID, e.prediction_id, e.timestamp, e.features, e.prediction, e.score
            )
        await producer.labels(
            scenario.MODEL_ID, [(e.prediction_id, e.label, e.timestamp + 1) for e in events]
        )
        await producer.flush()
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap, **security.client_options())
    await raw.start()
    try:
        await raw.send_and_wait(worker.topics.predictions, b"{not json", key=b"broken")
        end = scenario.START + WINDOWS * scenario.WINDOW + scenario.LATENESS + 1
        for partition in range(2):
            await raw.send_and_wait(
                worker.topics.predictions, end_of_stream_message(end), partition=partition
            )
    finally:
        await raw.stop()


@pytest.mark.parametrize("kind", ["sasl_ssl_scram_sha_512", "mutual_tls"])
def test_the_whole_pipeline_over_a_secured_listener(
    kind: str,
    tls_dir: Path,
    topic_prefix: str,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = sasl(tls_dir) if kind.startswith("sasl") else mutual_tls(tls_dir)
    bootstrap = SASL_SSL if kind.startswith("sasl") else MTLS
    for key, value in settings.items():
        monkeypatch.setenv(f"DRIFTLINE_{key}", value)
    argv = ["topics", "create", "--partitions", "2", "--bootstrap", bootstrap]
    assert main([*argv, "--topic-prefix", topic_prefix]) == 0
    capsys.readouterr()
    sessions = register(sqlite_url)
    worker = WorkerProcess(
        bootstrap, sqlite_url, topic_prefix, 2, tmp_path / "w",
        {**settings, "IDLE_TIMEOUT_SECONDS": "3600"},
    )  # fmt: skip
    security = security_of(settings)
    worker.start()
    try:
        asyncio.run(send(bootstrap, worker, security))
        final_windows(sessions, WINDOWS, 120)

        def complete() -> list[Any] | None:
            # A partition that has not reported yet does not hold a window back; its
            # partial, arriving later, rewrites the final window whole.
            with sessions() as session:
                found = history.window_history(session, scenario.MODEL_ID, None, None)
            return found if [r.n_rows for r in found] == [PER_WINDOW] * WINDOWS else None

        rows = wait_for(complete, 60, "every window with all its rows")
        assert [bool(r.dataset_drift) for r in rows] == [w >= DRIFT_FROM for w in range(WINDOWS)]

        def triggers() -> list[Any] | None:
            found = asyncio.run(read_all(bootstrap, worker.topics.retrain_triggers, security))
            return found or None

        assert wait_for(triggers, 60, "a retraining trigger on its topic")
        dead = asyncio.run(read_all(bootstrap, worker.topics.dead_letter, security))
        assert [d.key for d in dead] == [b"broken"]
    finally:
        assert worker.stop() == 0
    log = worker.log_path.read_text(errors="replace")
    assert "Worker ready" in log
    if security.sasl_password is not None:
        assert security.sasl_password.get_secret_value() not in log


def run_worker(settings: dict[str, str], bootstrap: str, tmp_path: Path) -> tuple[int, str, float]:
    env = {
        **os.environ,
        **{f"DRIFTLINE_{k}": v for k, v in settings.items()},
        "DRIFTLINE_BROKER": f"kafka://{bootstrap}",
        "DRIFTLINE_DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'd.db'}",
        "DRIFTLINE_DATA_DIR": str(tmp_path / "faust"),
    }
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "driftline", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - began


@pytest.mark.parametrize(
    ("mistake", "names"),
    [
        ("wrong-password", "DRIFTLINE_KAFKA_SASL_PASSWORD"),
        ("unknown-ca", "DRIFTLINE_KAFKA_SSL_CA_FILE"),
        ("no-tls-against-tls", "DRIFTLINE_KAFKA_SECURITY_PROTOCOL"),
        ("plaintext-against-tls", "DRIFTLINE_KAFKA_SECURITY_PROTOCOL"),
        ("hostname-mismatch", "DRIFTLINE_KAFKA_SSL_CHECK_HOSTNAME"),
    ],
)
def test_a_misconfigured_worker_stops_with_one_line_naming_the_setting(
    mistake: str, names: str, tls_dir: Path, tmp_path: Path
) -> None:
    settings = sasl(tls_dir)
    if mistake == "wrong-password":
        wrong = tmp_path / "password"
        wrong.write_text("not-the-password\n")
        settings = sasl(tls_dir, wrong)
    elif mistake == "unknown-ca":
        del settings["KAFKA_SSL_CA_FILE"]  # the system's CAs never signed the local one
    elif mistake == "no-tls-against-tls":
        settings = {**settings, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
        del settings["KAFKA_SSL_CA_FILE"]
    elif mistake == "plaintext-against-tls":  # nothing set: the default, plaintext
        settings = {}
    else:
        settings = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": str(tls_dir / "ca.pem")}
    bootstrap = UNNAMED if mistake == "hostname-mismatch" else SASL_SSL
    status, output, seconds = run_worker(settings, bootstrap, tmp_path)
    assert status != 0, output
    assert seconds < 60
    errors = [line for line in output.splitlines() if line.startswith("driftline worker: error:")]
    assert len(errors) == 1, output
    assert names in errors[0], errors[0]
    assert "Traceback" not in output
    assert (tls_dir / "sasl-password").read_text().strip() not in output
