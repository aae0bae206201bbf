"""Worker settings: defaults, a config file, the environment over the file, clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from driftline.errors import ConfigurationError
from stream_app.settings import load_settings
from stream_app.worker import JsonFormatter


def test_defaults_without_file_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.delenv("DRIFTLINE_PARTITIONS", raising=False)
    settings = load_settings()
    assert settings.partitions == 4 and settings.broker == "kafka://127.0.0.1:19092"


def test_stage1_batch_defaults_by_consumer_path_and_an_explicit_one_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DRIFTLINE_CONFIG", "DRIFTLINE_BATCH_MAX", "DRIFTLINE_WHOLE_FETCHES"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().stage1_batch == 20_000  # whole fetches are the default
    assert load_settings(whole_fetches=False).stage1_batch == 2_000
    monkeypatch.setenv("DRIFTLINE_BATCH_MAX", "200")
    assert load_settings().stage1_batch == 200
    assert load_settings(whole_fetches=False).stage1_batch == 200


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "worker.toml"
    path.write_text('partitions = 8\ntopic_prefix = "staging."\n')
    monkeypatch.setenv("DRIFTLINE_PARTITIONS", "2")
    settings = load_settings(path)
    assert settings.partitions == 2
    assert settings.topic_prefix == "staging."


def test_json_config_files_work_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_IDLE_TIMEOUT_SECONDS", raising=False)
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"idle_timeout_seconds": 3.5}))
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(path))
    assert load_settings().idle_timeout_seconds == 3.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("partitions = 0", "partitions"),
        ("nonsense_key = 1", "nonsense_key"),
        ("partitions = ", "cannot read config file"),
    ],
)
def test_bad_settings_say_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    monkeypatch.delenv("DRIFTLINE_PARTITIONS", raising=False)
    path = tmp_path / "worker.toml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(path)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_json_log_lines_are_one_object_each() -> None:
    record = logging.LogRecord("stream_app", logging.WARNING, __file__, 1, "late: %d", (3,), None)
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["level"] == "warning" and data["message"] == "late: 3"
    assert data["logger"] == "stream_app" and "ts" in data


def test_small_stored_values_get_a_block_of_their_own() -> None:
    import tracemalloc

    import orjson

    from stream_app.state_store import MemoryStore

    store = MemoryStore()
    tracemalloc.start()
    try:
        for i in range(500):
            store.set(0, f"k{i}", orjson.dumps({"k": "p", "x": i}))
        store.writes.clear()
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert used / 500 < 1024  # orjson's own results would hold 4 KiB each
    assert store.get("k7") == orjson.dumps({"k": "p", "x": 7})
