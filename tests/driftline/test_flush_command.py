"""``driftline flush``: its arguments, without a broker (the integration test sends markers)."""

from __future__ import annotations

from typing import Any

import pytest

from driftline import pipeline_commands
from driftline.cli import main
from driftline.producer import StreamEnd
from schemas.topics import Topics


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Topics, float | None]]:
    """Replaces the broker call; records what the command would have published."""
    calls: list[tuple[str, Topics, float | None]] = []

    async def fake(
        bootstrap: str, topics: Topics, until: float | None, security: object = None
    ) -> StreamEnd:
        calls.append((bootstrap, topics, until))
        return StreamEnd(1_777_593_600.0 if until is None else until, (0, 1, 2))

    monkeypatch.setattr(pipeline_commands, "_publish_end", fake)
    for name in ("DRIFTLINE_BROKER", "DRIFTLINE_TOPIC_PREFIX", "DRIFTLINE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.mark.parametrize(
    ("until", "expected"),
    [
        ("2026-05-01T00:00:00Z", 1_777_593_600.0),
        ("2026-05-01T02:00:00+02:00", 1_777_593_600.0),
        ("2026-05-01T00:00:00", 1_777_593_600.0),  # no offset: UTC
        ("2026-05-01", 1_777_593_600.0),
        ("1777593600", 1_777_593_600.0),
        ("1777593600.25", 1_777_593_600.25),
    ],
)
def test_until_reads_iso_8601_and_epoch_seconds(
    until: str, expected: float, published: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flush", "--until", until]) == 0
    assert published[0][2] == expected
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "3 partitions" in out


def test_defaults_come_from_the_worker_settings(
    published: list[Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_BROKER", "kafka://a:9092;kafka://b:9093")
    monkeypatch.setenv("DRIFTLINE_TOPIC_PREFIX", "staging.")
    assert main(["flush"]) == 0
    bootstrap, topics, until = published[0]
    assert (bootstrap, topics.predictions, until) == (
        "a:9092,b:9093",
        "staging.driftline.predictions.v1",
        None,
    )
    assert capsys.readouterr().out == (
        "end of stream at 2026-05-01T00:00:00Z: marker sent to 3 partitions of "
        "staging.driftline.predictions.v1 on a:9092,b:9093\n"
    )


def test_options_win_over_the_settings(
    published: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_TOPIC_PREFIX", "staging.")
    args = ["flush", "--bootstrap", "127.0.0.1:19092", "--topic-prefix", ""]
    assert main(args) == 0
    bootstrap, topics, _ = published[0]
    assert (bootstrap, topics.predictions) == ("127.0.0.1:19092", "driftline.predictions.v1")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--until", "yesterday"], "--until 'yesterday': not an ISO 8601"),
        (["--until", "nan"], "--until 'nan'"),
        (["--until", "1777593600000"], "must be before 2200"),  # milliseconds
        (["--until", "-5"], "--until '-5'"),
        (["--bootstrap", "localhost"], "--bootstrap 'localhost': 'localhost' is not host:port"),
        (["--bootstrap", ","], "--bootstrap ',' names no host:port"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], says: str, published: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["flush", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and published == []
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("driftline flush: error: ") and says in captured.err


def test_a_broker_setting_that_is_not_a_url_is_a_configuration_error(
    published: list[Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLINE_BROKER", "kafka://")
    assert main(["flush"]) == 2
    assert "DRIFTLINE_BROKER" in capsys.readouterr().err and published == []


def test_an_unreachable_broker_is_reported_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    assert main(["flush", "--bootstrap", "127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the broker running" in err
