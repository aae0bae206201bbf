"""The demo's HTTP API: ``driftline api`` as its own process over the demo's database.

The demo reads its drift summary back over HTTP with a read key it creates (what a
notebook or a dashboard would do) and prints how to keep the API and its dashboard up
afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import ServiceError
from storage.api_keys import create_key

PREFERRED_PORT = 8000


@dataclass
class DemoApi:
    base: str
    key: str
    database_url: str

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def free_port() -> int:
    """8000 when it is free (the URL alert messages link to), else any free port."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PREFERRED_PORT))
            return PREFERRED_PORT
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


@contextmanager
def demo_api(
    database_url: str,
    sessions: sessionmaker[Session],
    workdir: Path,
    say: Callable[[str], None],
) -> Iterator[DemoApi]:
    with sessions.begin() as session:
        _, key = create_key(session, "demo", "read")
    port = free_port()
    env = {
        **os.environ,
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_API_HOST": "127.0.0.1",
        "DRIFTLINE_API_PORT": str(port),
        "DRIFTLINE_API_OPEN_DASHBOARD": "true",
    }
    log_path = workdir / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "driftline", "api"], env=env, stdout=log, stderr=log
        )
    api = DemoApi(f"http://127.0.0.1:{port}", key, database_url)
    try:
        _wait_healthy(api, process, log_path)
        say(f"HTTP API on {api.base} (log: {log_path}); dashboard at {api.base}/dashboard/")
        yield api
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_healthy(api: DemoApi, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"`driftline api` exited ({process.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(api.base + "/healthz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise ServiceError(f"`driftline api` did not answer /healthz in 60 s; see {log_path}")


def report(api: DemoApi, model_id: str, out: Any) -> int:
    """Print the drifted results as the API serves them; returns how many it listed."""
    page = api.get(f"/api/v1/models/{model_id}/drift?status=drift&limit=1000")
    drifted = page["items"]
    features = sorted({item["feature"] for item in drifted})
    out.write(
        f"\nOver HTTP: GET {api.base}/api/v1/models/{model_id}/drift?status=drift lists "
        f"{len(drifted)} drifted results ({', '.join(features)}).\n"
        f"Serve the API and its dashboard on the demo's results again later with:\n"
        f"  DRIFTLINE_DATABASE_URL={api.database_url} DRIFTLINE_API_OPEN_DASHBOARD=true "
        f".venv/bin/driftline api\n"
        f"and open {api.base}/dashboard/models/{model_id}\n"
    )
    return len(drifted)
