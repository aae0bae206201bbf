"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

The compose file: every service a production-like deployment needs, a healthcheck on every
service that keeps running, one-shot setup before the workers, dependencies on the states
that matter, scalable workers, secrets from the env file only, and every command a real
``driftline`` command with real options. The Dockerfile: every file the build needs is
copied (what pyproject.toml and setup.py name), the native decoder's presence is asserted
at build time, it runs as a user that is not root, and it has a HEALTHCHECK.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.cli import build_parser, main
from driftline.local.kafka import KAFKA_VERSION
from schemas.alert_routing import AlertRouting

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name for name, spec in SERVICES.items() if spec.get("build") == "."}
ONE_SHOT = {name for name, spec in SERVICES.items() if spec.get("restart") == "no"}


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments out."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_services_of_a_deployment() -> None:
    assert {"kafka", "postgres", "mailpit", "topics", "migrate", "worker", "api"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"  # what the tests run
    kafka = SERVICES["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    # Every listener named has a protocol (KRaft refuses to start on CONTROLLER otherwise),
    # and the data directory is the volume.
    named = {entry.split(":", 1)[0] for entry in kafka["KAFKA_LISTENERS"].split(",")}
    mapped = dict(e.split(":") for e in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert named <= set(mapped)
    assert any(v.endswith(":" + kafka["KAFKA_LOG_DIRS"]) for v in SERVICES["kafka"]["volumes"])
    assert SERVICES["mailpit"]["image"].startswith("axllent/mailpit:")
    assert "8025:8025" in SERVICES["mailpit"]["ports"]  # its web inbox
    assert {"worker", "api", "topics", "migrate"} <= OURS
    assert {"topics", "migrate"} == ONE_SHOT


def test_every_service_that_keeps_running_has_a_healthcheck() -> None:
    image_checks = any(word == "HEALTHCHECK" for word, _ in dockerfile())
    for name, spec in SERVICES.items():
        if name in ONE_SHOT:
            continue
        own = spec.get("healthcheck")
        if own is None:
            assert name in OURS and image_checks, f"{name} has no healthcheck"
        else:
            assert not own.get("disable"), name
            assert own["test"][0] == "CMD" and len(own["test"]) > 1, name


def test_setup_runs_once_before_the_workers_and_the_api() -> None:
    def needs(name: str) -> dict[str, str]:
        return {k: v["condition"] for k, v in SERVICES[name].get("depends_on", {}).items()}

    assert needs("topics") == {"kafka": "service_healthy"}
    assert needs("migrate") == {"postgres": "service_healthy"}
    assert (
        needs("worker")["topics"] == needs("worker")["migrate"] == "service_completed_successfully"
    )
    assert needs("worker")["mailpit"] == "service_healthy"
    assert needs("api")["migrate"] == "service_completed_successfully"
    for name in SERVICES:
        for other, condition in needs(name).items():
            assert other in SERVICES, (name, other)
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[other], (name, other)


def test_the_workers_scale() -> None:
    worker = SERVICES["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker and "ports" not in worker  # replicas would clash


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_command_is_a_real_driftline_command(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = SERVICES[name]["command"]
    args = build_parser().parse_args(command)  # unknown commands or options exit 2
    assert callable(args.handler)
    words = [w for w in command if not w.startswith("-")][: len(command)]
    path = words[: 2 if args.command in ("topics", "db", "models", "local") else 1]
    assert main([*path, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: driftline {' '.join(path)}")


def test_secrets_come_from_the_env_file_only() -> None:
    example = (ROOT / "deploy" / "driftline.env.example").read_text()
    keys = {line.split("=", 1)[0] for line in example.splitlines() if re.match(r"^[A-Z_]+=", line)}
    assert {"POSTGRES_PASSWORD", "DRIFTLINE_DATABASE_URL"} <= keys
    for name, spec in SERVICES.items():
        environment = spec.get("environment", {})
        assert not any("PASSWORD" in k or "DATABASE_URL" in k for k in environment), name
        if name in OURS or name == "postgres":
            assert spec["env_file"] == ["deploy/driftline.env"], name
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "deploy/driftline.env" in ignored
    assert "deploy/driftline.env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_workers_alert_routing_file_is_in_the_repository_and_valid() -> None:
    [mount] = SERVICES["worker"]["volumes"]
    source, target, _ = mount.split(":")
    assert SERVICES["worker"]["command"][-1] == target
    routing = AlertRouting.model_validate(yaml.safe_load((ROOT / source).read_text()))
    [receiver] = routing.receivers
    assert receiver.email[0].host == "mailpit" and receiver.email[0].port == 1025


def test_the_dockerfile_copies_everything_the_build_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    needed = {"pyproject.toml", "setup.py", pyproject["project"]["readme"], *packages}
    # setup.py's extension sources, inside a package that is copied whole
    sources = re.findall(r'sources=\["([^"]+)"\]', (ROOT / "setup.py").read_text())
    assert sources and all(Path(s).parts[0] in packages for s in sources)
    copied: set[str] = set()
    for word, rest in dockerfile():
        if word == "COPY" and not rest.startswith("--from"):
            *sources_of_copy, _ = shlex.split(rest)
            copied.update(s.rstrip("/") for s in sources_of_copy)
    assert needed <= copied, f"not copied: {sorted(needed - copied)}"
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert not any(path in ignored for path in needed)
    assert {".venv", "var", ".git"} <= ignored


def test_the_image_asserts_its_native_extensions_runs_unprivileged_and_checks_itself() -> None:
    steps = dockerfile()
    runs = [rest for word, rest in steps if word == "RUN"]
    install = next(i for i, rest in enumerate(runs) if "pip install" in rest)
    # The build fails without them.
    assert "import schemas._envelope_native, stream_app._record_batches" in runs[install]
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (word, _) in enumerate(steps) if word == "USER")
    assert not any(word == "RUN" for word, _ in steps[last_user:])
    assert any(word == "HEALTHCHECK" for word, _ in steps)
    assert dict(steps).get("ENTRYPOINT") == '["driftline"]'
