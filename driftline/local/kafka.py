"""A single-node Apache Kafka broker in KRaft mode, run from the official jars.

The jars come from Maven Central through ``mvn`` (the one registry every machine of ours
reaches) into ``<cache dir>/kafka-<version>/libs`` once; the broker's configuration, data,
log and pid file live in ``<run dir>/kafka``. It listens on ``127.0.0.1:<port>`` and its
KRaft controller on ``<port> + 1``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import ServiceError
from driftline.limits import BROKER_MESSAGE_MAX_BYTES
from driftline.local import kafka_tls
from driftline.local.environment import (
    HOST,
    Report,
    ServiceStatus,
    cache_dir,
    check_port,
    port_from_env,
    printer,
    run_dir,
)

# create_topics lives with the other client calls; importable from here as the one Kafka API.
from driftline.local.kafka_client import broker_serves, run_coroutine
from driftline.local.kafka_client import create_topics as create_topics
from driftline.local.kafka_client import create_topics_async as create_topics_async
from driftline.local.processes import (
    command_line,
    is_alive,
    locked,
    port_in_use,
    report_log_tail,
    run_command,
    spawn_detached,
    stop_process_group,
)

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
# Kafka 3.9 logs through slf4j 1.7; its own distribution binds it to reload4j.
SLF4J_BINDING = ("org.slf4j", "slf4j-reload4j", "1.7.36")
RELOAD4J = ("ch.qos.reload4j", "reload4j", "1.2.25")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
DEFAULT_PORT = 19092
HEAP = "512m"


@dataclass(frozen=True)
class KafkaConfig:
    """Where one local broker keeps its files, and its ports."""

    port: int
    run_dir: Path
    cache_dir: Path
    # With the secured listeners too: SASL_SSL on port + 2, mutual TLS on port + 3
    # (driftline/local/kafka_tls.py).
    secure: bool = False

    @classmethod
    def from_env(cls, port: int | None = None, secure: bool | None = None) -> KafkaConfig:
        if secure is None:
            secure = os.environ.get("DRIFTLINE_KAFKA_SECURE", "").lower() in ("1", "true", "yes")
        span = 5 if secure else 2
        chosen = (
            check_port(port, span=span, source="--port")
            if port is not None
            else port_from_env("DRIFTLINE_KAFKA_PORT", DEFAULT_PORT, span=span)
        )
        return cls(port=chosen, run_dir=run_dir() / "kafka", cache_dir=cache_dir(), secure=secure)

    @property
    def tls_dir(self) -> Path:
        return self.run_dir / "tls"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.port, self.port + (5 if self.secure else 2)))

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def properties_path(self) -> Path:
        return self.run_dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.run_dir / "log4j.properties"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / "kafka.pid"


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker; ``started`` says whether this call started it."""

    pid: int
    port: int
    log_path: Path
    started: bool

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


def render_server_properties(config: KafkaConfig) -> str:
    listeners = {
        "PLAINTEXT": ("PLAINTEXT", config.port),
        "CONTROLLER": ("PLAINTEXT", config.controller_port),
    }
    hosts = {name: HOST for name in ("PLAINTEXT", "CONTROLLER", "SASL_SSL", "MTLS")}
    if config.secure:
        listeners["SASL_SSL"] = ("SASL_SSL", kafka_tls.sasl_ssl_port(config.port))
        listeners["MTLS"] = ("SSL", kafka_tls.mtls_port(config.port))
        listeners["UNNAMED"] = ("SSL", kafka_tls.unnamed_port(config.port))
        hosts["UNNAMED"] = kafka_tls.UNNAMED_HOST
    advertised = [f"{name}://{hosts[name]}:{port}" for name, (_, port) in listeners.items()]
    settings = {
        # KRaft combined mode: one process is the whole cluster, no ZooKeeper.
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{config.controller_port}",
        "listeners": ",".join(f"{n}://{hosts[n]}:{port}" for n, (_, port) in listeners.items()),
        "advertised.listeners": ",".join(a for a in advertised if not a.startswith("CONTROLLER")),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, (p, _) in listeners.items()),
        "log.dirs": str(config.data_dir),
        "num.partitions": "1",
        # One broker: internal topics cannot have more replicas than that.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        # Fewer internal partitions than the default 50: the first consumer group joins sooner.
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.num.partitions": "8",
        # Tests start consumer groups all the time; the default 3 s delay would slow each one.
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        # Sized for a 2-core development machine rather than a production host.
        "num.network.threads": "2",
        "num.io.threads": "4",
        # Stated, not left to the default: the one limit of driftline.limits (equal to
        # Kafka's default today), which the producer helper and the docs also use.
        "message.max.bytes": str(BROKER_MESSAGE_MAX_BYTES),
    }
    if config.secure:
        settings.update(kafka_tls.listener_settings(HOST, config.port, config.tls_dir))
    lines = [f"# Generated by driftline for Apache Kafka {KAFKA_VERSION}; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def render_log4j() -> str:
    # Everything to stdout, which start() sends to server.log.
    return "\n".join(
        [
            "log4j.rootLogger=INFO, stdout",
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.state.change.logger=WARN",
            "log4j.logger.kafka.request.logger=WARN",
            "",
        ]
    )


def render_pom() -> str:
    dependencies = [("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION)]
    dependencies += [SLF4J_BINDING, RELOAD4J]
    rendered = "".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>\n"
        for group, artifact, version in dependencies
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.driftline</groupId>\n"
        f"  <artifactId>kafka-runtime</artifactId>\n  <version>{KAFKA_VERSION}</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{rendered}  </dependencies>\n"
        "</project>\n"
    )


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # would be read as an option by StorageTool
            return cluster_id


def install(config: KafkaConfig | None = None, *, report: Report | None = None) -> Path:
    """Put Kafka's jars in the cache (once) and return their directory."""
    config = config or KafkaConfig.from_env()
    report = report or printer()
    marker = config.libs_dir / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar"
    if marker.exists():
        return config.libs_dir
    _require_tool("mvn", "maven")
    _require_tool("java", "openjdk-17-jre-headless")
    home = config.libs_dir.parent
    with locked(home / "install.lock"):
        if marker.exists():  # another command installed it while we waited
            return config.libs_dir
        report(f"resolving Apache Kafka {KAFKA_VERSION} from Maven Central with mvn ...")
        began = time.monotonic()
        (home / "pom.xml").write_text(render_pom())
        partial = home / "libs.partial"  # renamed only when complete: no half installs
        shutil.rmtree(partial, ignore_errors=True)
        run_command(
            [
                *("mvn", "-q", "-B", "-f", str(home / "pom.xml")),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                *(f"-DoutputDirectory={partial}", "-DincludeScope=runtime"),
            ],
            timeout=900,
            what="resolving Kafka with Maven",
            report=report,
        )
        partial.rename(config.libs_dir)
        jars = len(list(config.libs_dir.glob("*.jar")))
        report(f"installed {jars} jars in {config.libs_dir} in {time.monotonic() - began:.1f} s")
    return config.libs_dir


def _require_tool(name: str, package: str) -> None:
    if shutil.which(name) is None:
        raise ServiceError(
            f"installing Kafka needs `{name}`; run `apt-get install -y {package}` and try again"
        )


def start(
    port: int | None = None,
    *,
    timeout: float = 60.0,
    report: Report | None = None,
    secure: bool | None = None,
) -> KafkaBroker:
    """Start the broker unless ours already runs; return once it serves clients."""
    config = KafkaConfig.from_env(port, secure)
    report = report or printer()
    install(config, report=report)
    with locked(config.run_dir / "kafka.lock"):
        running = _running(config)
        if running is not None:
            pid, running_port = running
            if running_port != config.port:
                raise ServiceError(
                    f"the broker of {config.run_dir} already runs on port {running_port}; "
                    f"use that port, or stop it first with `driftline local kafka stop`"
                )
            if config.secure and not _started_secure(config):
                raise ServiceError(
                    f"the broker of {config.run_dir} runs without the secured listeners; stop "
                    "it (`driftline local kafka stop`) and start it with --secure"
                )
            _wait_until_serving(config, pid, timeout, report)
            report(f"Kafka broker already running on {config.bootstrap} (pid {pid})")
            return KafkaBroker(pid, config.port, config.log_path, started=False)
        for taken in config.ports:
            if port_in_use(taken):
                raise ServiceError(
                    f"port {taken} on {HOST} is used by another process; stop it, or choose "
                    "other ports with --port or DRIFTLINE_KAFKA_PORT (the broker takes port "
                    f"to port+{len(config.ports) - 1})"
                )
        if config.secure:
            kafka_tls.ensure_material(config.tls_dir, report)
        pid = _launch(config, report)
        try:
            elapsed = _wait_until_serving(config, pid, timeout, report)
            if config.secure:
                kafka_tls.add_scram_user(config.libs_dir, config.bootstrap, config.tls_dir, report)
        except ServiceError:
            stop_process_group(pid, timeout=10, what="the Kafka broker", report=report)
            config.pid_path.unlink(missing_ok=True)
            raise
    report(f"Kafka broker serving on {config.bootstrap} (pid {pid}) after {elapsed:.1f} s")
    return KafkaBroker(pid, config.port, config.log_path, started=True)


def _launch(config: KafkaConfig, report: Report) -> int:
    config.run_dir.mkdir(parents=True, exist_ok=True)
    config.properties_path.write_text(render_server_properties(config))
    config.log4j_path.write_text(render_log4j())
    classpath = f"{config.libs_dir}/*"
    log4j = f"-Dlog4j.configuration=file:{config.log4j_path}"
    if not (config.data_dir / "meta.properties").exists():
        report(f"formatting KRaft storage in {config.data_dir}")
        run_command(
            [
                *("java", log4j, "-cp", classpath, "kafka.tools.StorageTool", "format"),
                *("-t", new_cluster_id(), "-c", str(config.properties_path)),
                "--ignore-formatted",
            ],
            timeout=120,
            what="formatting Kafka storage",
            report=report,
        )
    with open(config.log_path, "a") as log:  # the log is appended to: mark where this run begins
        log.write(f"==== driftline: starting Apache Kafka {KAFKA_VERSION} at {time.ctime()} ====\n")
    report(f"starting Kafka broker {KAFKA_VERSION} on {config.bootstrap} (log {config.log_path})")
    pid = spawn_detached(
        [
            *("java", f"-Xmx{HEAP}", "-Xms128m", "-Djava.awt.headless=true", log4j),
            *("-cp", classpath, "kafka.Kafka", str(config.properties_path)),
        ],
        cwd=config.run_dir,
        log_path=config.log_path,
    )
    config.pid_path.write_text(
        json.dumps({"pid": pid, "port": config.port, "secure": config.secure})
    )
    return pid


def _started_secure(config: KafkaConfig) -> bool:
    try:
        return bool(json.loads(config.pid_path.read_text()).get("secure"))
    except (OSError, ValueError, AttributeError):
        return False


def stop(port: int | None = None, *, timeout: float = 30.0, report: Report | None = None) -> bool:
    """Stop the broker of the run dir; return whether one was running.

    ``port``, when given, must be the one the broker runs on: a guard against stopping a
    broker other than the one meant.
    """
    config = KafkaConfig.from_env(port)
    report = report or printer()
    with locked(config.run_dir / "kafka.lock"):
        running = _running(config)
        if running is None:
            config.pid_path.unlink(missing_ok=True)
            return False
        pid, running_port = running
        if port is not None and running_port != port:
            raise ServiceError(
                f"the broker of {config.run_dir} runs on port {running_port}, not {port}; "
                f"run `driftline local kafka stop --port {running_port}`"
            )
        report(f"stopping Kafka broker on {HOST}:{running_port} (pid {pid})")
        stop_process_group(pid, timeout=timeout, what="the Kafka broker", report=report)
        config.pid_path.unlink(missing_ok=True)
    report("Kafka broker stopped")
    return True


def status() -> ServiceStatus:
    config = KafkaConfig.from_env()
    running = _running(config)
    pid, port = running if running is not None else (None, None)
    return ServiceStatus("kafka", running is not None, pid, port, config.log_path)


def _running(config: KafkaConfig) -> tuple[int, int] | None:
    """(pid, port) of the broker this run dir started, if it is alive."""
    try:
        recorded = json.loads(config.pid_path.read_text())
        pid, port = int(recorded["pid"]), int(recorded["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # The pid may have been reused by an unrelated process since: check it is our broker.
    cmdline = command_line(pid)
    if is_alive(pid) and "kafka.Kafka" in cmdline and str(config.properties_path) in cmdline:
        return pid, port
    return None


def _wait_until_serving(config: KafkaConfig, pid: int, timeout: float, report: Report) -> float:
    began = time.monotonic()
    next_note = began + 5
    while True:
        elapsed = time.monotonic() - began
        if not is_alive(pid):
            report_log_tail(config.log_path, report)
            raise ServiceError(
                f"the Kafka broker exited during start-up; read {config.log_path} "
                "(its last lines are above)"
            )
        if elapsed >= timeout:
            report_log_tail(config.log_path, report)
            raise ServiceError(
                f"the Kafka broker did not serve on {config.bootstrap} within {timeout:.0f} s; "
                f"read {config.log_path} (its last lines are above)"
            )
        probe = min(5.0, timeout - elapsed)
        if port_in_use(config.port) and run_coroutine(broker_serves(config.bootstrap, probe)):
            return time.monotonic() - began
        if time.monotonic() >= next_note:
            report(
                f"waiting for the Kafka broker on {config.bootstrap} "
                f"({elapsed:.0f} s of {timeout:.0f} s)"
            )
            next_note += 5
        time.sleep(0.25)
