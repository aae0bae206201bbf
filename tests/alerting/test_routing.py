"""The alert routing file: loading and refusing it, the route tree, matchers and secrets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from alerting.integrations import build_integrations
from alerting.matchers import Matcher
from alerting.notifiers.email import EmailNotifier
from alerting.notifiers.slack import SlackBotNotifier, SlackWebhookNotifier
from alerting.routing import Routing, load_routing
from driftline.errors import ConfigurationError
from schemas.alert_routing import DEFAULT_INHIBIT_RULES, AlertRouting, RouteSpec

# Every kind of route and receiver. Paths: root "0", critical "0.0", risk "0.1",
# risk drift "0.1.0" (which names no receiver: it inherits "risk").
EXAMPLE = """\
route:
  receiver: ml-team
  group_by: [model]
  group_interval: 10m
  routes:
    - matchers: ['severity="critical"']
      receiver: ml-oncall
      group_wait: 0s
      continue: true
    - matchers: [team="risk"]
      receiver: risk
      repeat_interval: 1h
      routes:
        - matchers: ['kind=~"feature_drift|dataset_drift"']
          group_by: [model, subject]
receivers:
  - name: ml-team
    slack:
      - webhook_url_env: SLACK_ML_TEAM
  - name: ml-oncall
    slack:
      - token_env: SLACK_BOT_TOKEN
        channel: "#ml-oncall"
    email:
      - to: [oncall@example.com, lead@example.com]
        from: Driftline <driftline@example.com>
        host: smtp.example.com
        port: 465
        security: tls
        username: driftline
        password_env: SMTP_PASSWORD
  - name: risk
    send_resolved: false
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [model]
dashboard_url: https://driftline.example.com/
"""

# A value no message may ever show.
SECRET = "s3cret-XYZZY-4242"
ENVIRON = {
    "SLACK_ML_TEAM": f"https://hooks.slack.com/services/{SECRET}",
    "SLACK_BOT_TOKEN": f"xoxb-{SECRET}",
    "SMTP_PASSWORD": SECRET,
}


def write(tmp_path: Path, text: str, name: str = "alerts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def example() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE)
    return document


def routing_of(route: dict[str, Any], receivers: tuple[str, ...] = ("a", "b", "c")) -> Routing:
    names = [{"name": name} for name in receivers]
    return Routing.of(AlertRouting.model_validate({"route": route, "receivers": names}))


def receivers_for(routing: Routing, labels: dict[str, str]) -> list[str]:
    return [route.receiver for route in routing.routes_for(labels)]


# --- loading ------------------------------------------------------------------------------


def test_the_complete_example_loads(tmp_path: Path) -> None:
    routing = load_routing(write(tmp_path, EXAMPLE))
    assert list(routing.receivers) == ["ml-team", "ml-oncall", "risk"]
    root = routing.root
    assert (root.path, root.receiver, root.matchers) == ("0", "ml-team", ())
    critical, risk = root.children
    assert (critical.path, critical.receiver, critical.continue_) == ("0.0", "ml-oncall", True)
    assert critical.matchers == (Matcher.parse('severity="critical"'),)
    assert (risk.path, risk.receiver, risk.continue_) == ("0.1", "risk", False)
    (drift,) = risk.children
    assert (drift.path, drift.receiver) == ("0.1.0", "risk")

    oncall = routing.receivers["ml-oncall"]
    assert (oncall.slack[0].token_env, oncall.slack[0].channel) == ("SLACK_BOT_TOKEN", "#ml-oncall")
    email = oncall.email[0]
    assert email.to == ["oncall@example.com", "lead@example.com"]
    assert (email.sender, email.host, email.port, email.security) == (
        "Driftline <driftline@example.com>",
        "smtp.example.com",
        465,
        "tls",
    )
    assert (email.username, email.password_env) == ("driftline", "SMTP_PASSWORD")
    assert routing.receivers["ml-team"].slack[0].webhook_url_env == "SLACK_ML_TEAM"
    assert routing.receivers["risk"].send_resolved is False

    (rule,) = routing.inhibit_rules
    assert rule.source == (Matcher.parse('severity="critical"'),)
    assert rule.target == (Matcher.parse('severity="warning"'),)
    assert rule.equal == ("model",)
    assert routing.dashboard_url == "https://driftline.example.com"  # no trailing slash
    assert routing.top_n == 10


def test_settings_are_inherited_from_the_parent(tmp_path: Path) -> None:
    root = load_routing(write(tmp_path, EXAMPLE)).root
    critical, risk = root.children
    (drift,) = risk.children
    # (group_by, group_wait, group_interval, repeat_interval)
    assert (
        root.group_by,
        root.wait_for(["warning"]),
        root.group_interval,
        root.repeat_interval,
    ) == (
        ("model",),
        30.0,
        600.0,
        4 * 3600.0,
    )
    assert (critical.group_by, critical.group_wait, critical.group_interval) == (
        ("model",),
        0.0,  # its own, even though 0
        600.0,  # the root's
    )
    assert critical.repeat_interval == 4 * 3600.0
    assert (risk.group_wait, risk.group_interval, risk.repeat_interval) == (None, 600.0, 3600.0)
    # A grandchild inherits from its parent, not from the root.
    assert drift.group_by == ("model", "subject")
    assert (drift.group_wait, drift.group_interval, drift.repeat_interval) == (None, 600.0, 3600.0)
    assert drift.wait_for(["warning"]) == 30.0 and drift.wait_for(["critical"]) == 0.0


def test_defaults_of_a_minimal_file(tmp_path: Path) -> None:
    routing = load_routing(write(tmp_path, "route: {receiver: a}\nreceivers: [{name: a}]\n"))
    root = routing.root
    assert root.group_by == ("model",)
    assert (root.group_interval, root.repeat_interval) == (300.0, 14400.0)
    assert root.group_wait is None  # unset: 30 s, and 0 s for a group with a critical alert
    assert (root.wait_for(["warning"]), root.wait_for(["warning", "critical"])) == (30.0, 0.0)
    assert root.continue_ is False and root.children == ()
    assert len(routing.inhibit_rules) == len(DEFAULT_INHIBIT_RULES) == 2
    assert routing.dashboard_url is None and routing.top_n == 10
    assert routing.receivers["a"].slack == [] and routing.receivers["a"].email == []


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (2.5, 2.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        (" 10 m ", 600.0),
    ],
)
def test_durations(written: float | str, seconds: float) -> None:
    assert RouteSpec.model_validate({"group_wait": written}).group_wait == seconds


# --- routes_for: Alertmanager's semantics ---------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "paths"),
    [
        # Nothing matches a child: the root itself.
        ({"model": "churn", "severity": "warning"}, ["0"]),
        ({}, ["0"]),
        # critical says continue, so the next sibling may match too...
        ({"model": "churn", "severity": "critical", "team": "risk"}, ["0.0", "0.1"]),
        # ...but need not: then critical alone (not the root as well).
        ({"model": "churn", "severity": "critical"}, ["0.0"]),
        # A child whose own children do not match takes the alert itself...
        ({"model": "churn", "team": "risk", "kind": "volume"}, ["0.1"]),
        # ...and one whose child matches hands it down.
        ({"model": "churn", "team": "risk", "kind": "feature_drift"}, ["0.1.0"]),
        ({"severity": "critical", "team": "risk", "kind": "dataset_drift"}, ["0.0", "0.1.0"]),
        # Regex matchers match the whole value.
        ({"team": "risk", "kind": "feature_drift_v2"}, ["0.1"]),
    ],
)
def test_routes_for_the_example(tmp_path: Path, labels: dict[str, str], paths: list[str]) -> None:
    routing = load_routing(write(tmp_path, EXAMPLE))
    assert [route.path for route in routing.routes_for(labels)] == paths


def test_the_first_matching_child_wins_without_continue() -> None:
    routing = routing_of(
        {
            "receiver": "a",
            "routes": [
                {"matchers": ["team=risk"], "receiver": "b"},
                {"matchers": ["team=~.+"], "receiver": "c"},  # matches too, never reached
            ],
        }
    )
    assert receivers_for(routing, {"team": "risk"}) == ["b"]
    assert receivers_for(routing, {"team": "ml"}) == ["c"]
    assert receivers_for(routing, {}) == ["a"]


def test_continue_lets_every_next_sibling_match_until_one_without_it() -> None:
    routing = routing_of(
        {
            "receiver": "a",
            "routes": [
                {"matchers": ["team=risk"], "receiver": "b", "continue": True},
                {"matchers": ["model=churn"], "receiver": "c", "continue": True},
                {"matchers": ["team=risk"], "receiver": "a"},
                {"matchers": ["team=risk"], "receiver": "b"},  # after one without continue
            ],
        }
    )
    assert receivers_for(routing, {"team": "risk", "model": "churn"}) == ["b", "c", "a"]
    assert receivers_for(routing, {"team": "risk"}) == ["b", "a"]
    assert receivers_for(routing, {"model": "churn"}) == ["c"]
    # A non-matching route's continue does not matter: only matching ones go on.
    assert receivers_for(routing, {"model": "fraud"}) == ["a"]


def test_every_matcher_of_a_route_must_match() -> None:
    routing = routing_of(
        {
            "receiver": "a",
            "routes": [{"matchers": ["team=risk", "severity!=info"], "receiver": "b"}],
        }
    )
    assert receivers_for(routing, {"team": "risk", "severity": "warning"}) == ["b"]
    assert receivers_for(routing, {"team": "risk", "severity": "info"}) == ["a"]
    assert receivers_for(routing, {"team": "risk"}) == ["b"]  # absent: "" != "info"


# --- group keys --------------------------------------------------------------------------


def test_two_routes_to_one_receiver_never_share_a_group() -> None:
    routing = routing_of(
        {
            "receiver": "a",
            "routes": [
                {"matchers": ["severity=critical"], "receiver": "b", "continue": True},
                {"matchers": ["team=risk"], "receiver": "b"},
            ],
        }
    )
    labels = {"model": "churn", "severity": "critical", "team": "risk"}
    first, second = routing.routes_for(labels)
    assert first.receiver == second.receiver == "b"
    assert first.group_labels(labels) == second.group_labels(labels) == {"model": "churn"}
    assert first.group_key(labels) != second.group_key(labels)


def test_group_keys_follow_the_group_by_values_only() -> None:
    route = routing_of({"receiver": "a", "group_by": ["model", "team"]}).root
    key = route.group_key({"model": "churn", "team": "risk", "severity": "warning"})
    assert key == route.group_key({"model": "churn", "team": "risk", "severity": "critical"})
    assert key != route.group_key({"model": "fraud", "team": "risk"})
    assert key != route.group_key({"model": "churn", "team": "ml"})
    # An absent label groups with the empty value, as matchers read it.
    assert route.group_labels({"model": "churn"}) == {"model": "churn", "team": ""}
    assert route.group_key({"model": "churn"}) == route.group_key({"model": "churn", "team": ""})
    # Values holding the separators cannot make two groups' keys equal.
    assert route.group_key({"model": "a,team=b", "team": ""}) != route.group_key(
        {"model": "a", "team": "b,team="}
    )


def test_group_by_dots_groups_by_every_label() -> None:
    route = routing_of({"receiver": "a", "group_by": ["..."]}).root
    labels = {"team": "risk", "model": "churn"}
    assert route.group_labels(labels) == {"model": "churn", "team": "risk"}
    assert list(route.group_labels(labels)) == ["model", "team"]  # sorted: order-free keys
    assert route.group_key(labels) == route.group_key(dict(reversed(labels.items())))
    assert route.group_key(labels) != route.group_key({**labels, "severity": "warning"})
    assert route.group_key(labels) != route.group_key({**labels, "team": "ml"})
    assert route.group_key({"a": "x,b=y"}) != route.group_key({"a": "x", "b": "y"})


def test_an_empty_group_by_is_one_group_not_the_parents_group_by() -> None:
    routing = routing_of(
        {"receiver": "a", "group_by": ["team"], "routes": [{"matchers": ["x=1"], "group_by": []}]}
    )
    child = routing.root.children[0]
    assert child.group_by == ()
    assert child.group_labels({"x": "1", "team": "risk"}) == {}
    assert child.group_key({"x": "1", "team": "risk"}) == child.group_key({"x": "1", "model": "m"})
    assert routing_of({"receiver": "a", "group_by": []}).root.group_by == ()


# --- malformed files ----------------------------------------------------------------------


_DELETE: Any = object()
"""Pass to :func:`_set` to remove the key."""


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the example: ``path`` is dotted, list indexes as numbers."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return change


MALFORMED: list[tuple[Callable[[dict[str, Any]], None], list[str]]] = [
    (_set("route.group_wiat", "1m"), ["route.group_wiat: unknown field"]),
    (_set("route.routes.0.group_wait", "soon"), ["route.routes[0].group_wait:", "duration"]),
    (_set("route.routes.0.group_wait", -5), ["route.routes[0].group_wait:"]),
    (_set("route.routes.1.routes.0.repeat_interval", "4 hours"), ["routes[0].repeat_interval"]),
    (_set("route.routes.1.receiver", "risky"), ["route.routes[1].receiver: no receiver named"]),
    (_set("route.receiver", _DELETE), ["route.receiver: the root route needs a receiver"]),
    (_set("route.matchers", ["team=risk"]), ["route.matchers: the root route"]),
    (_set("route.routes.1.matchers", ["team~risk"]), ["route.routes[1].matchers[0]:", "not a"]),
    (
        _set("route.routes.0.matchers", ['severity=~"(critical"']),
        ["route.routes[0].matchers[0]:", "not a regular expression"],
    ),
    (_set("route.routes.1.matchers", ['team="ri\nsk"']), ["route.routes[1].matchers[0]:"]),
    (_set("route.group_by", ["...", "model"]), ["route: group_by:", "..."]),
    (_set("route.group_by", ["model-id"]), ["route.group_by"]),
    (_set("route.continue", "sometimes"), ["route.continue:"]),
    (
        _set("receivers.0.slack.0", {"webhook_url": f"https://hooks.slack.com/{SECRET}"}),
        ["receivers[0].slack[0]: webhook_url:", "webhook_url_env", "webhook_url_file"],
    ),
    (
        _set("receivers.1.slack.0.token", f"xoxb-{SECRET}"),
        ["receivers[1].slack[0]: token:", "token_env", "token_file"],
    ),
    (
        _set("receivers.1.email.0.password", SECRET),
        ["receivers[1].email[0]: password:", "password_env", "password_file"],
    ),
    (
        _set("receivers.0.slack.0.token_env", "SLACK_BOT_TOKEN"),
        ["receivers[0].slack[0]:", "exactly one"],
    ),
    (_set("receivers.0.slack.0", {}), ["receivers[0].slack[0]:", "exactly one"]),
    (_set("receivers.1.slack.0.channel", _DELETE), ["receivers[1].slack[0]: channel:"]),
    (_set("receivers.0.slack.0.webhook_url_env", "NOT-A-VAR"), ["slack[0].webhook_url_env"]),
    (_set("receivers.1.email.0.password_env", _DELETE), ["email[0]: username and password"]),
    (_set("receivers.1.email.0.to", ["oncall"]), ["receivers[1].email[0].to[0]:"]),
    (_set("receivers.1.email.0.security", "ssl"), ["receivers[1].email[0].security:"]),
    (_set("receivers.1.email.0.port", 0), ["receivers[1].email[0].port:"]),
    (_set("receivers.2.name", "ml-team"), ["receivers: names must be unique", "'ml-team'"]),
    (_set("receivers", []), ["receivers:"]),
    (_set("inhibit_rules.0.source_matchers", ["x"]), ["inhibit_rules[0].source_matchers[0]"]),
    (_set("top_n", 0), ["top_n:"]),
]


@pytest.mark.parametrize(("change", "named"), MALFORMED, ids=[named[0] for _, named in MALFORMED])
def test_malformed_files_are_refused_naming_the_file_and_the_key(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], named: list[str]
) -> None:
    document = copy.deepcopy(example())
    change(document)
    path = write(tmp_path, yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(ConfigurationError) as caught:
        load_routing(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for part in named:
        assert part in message
    assert SECRET not in message


def test_every_bad_key_of_a_file_is_named_at_once(tmp_path: Path) -> None:
    document = example()
    document["route"]["group_wiat"] = "1m"
    document["route"]["routes"][0]["group_wait"] = "soon"
    document["top_n"] = 99
    with pytest.raises(ConfigurationError) as caught:
        load_routing(write(tmp_path, yaml.safe_dump(document)))
    message = str(caught.value)
    assert "route.group_wiat" in message
    assert "route.routes[0].group_wait" in message
    assert "top_n" in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("route: {receiver: a\nreceivers: [{name: a}]\n", "is not valid YAML"),
        ("route:\n  receiver: a\n receivers: []\n", "is not valid YAML"),
        ("", "expected a mapping with route and receivers"),
        ("# only a comment\n", "expected a mapping with route and receivers"),
        ("- route\n- receivers\n", "expected a mapping with route and receivers"),
        ("receivers: [{name: a}]\n", "route: field required"),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as caught:
        load_routing(path)
    assert str(path) in str(caught.value) and says in str(caught.value)


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "alerts.yaml"
    with pytest.raises(ConfigurationError) as caught:
        load_routing(path)
    assert "cannot read the alert routing file" in str(caught.value)
    assert str(path) in str(caught.value)


# --- matchers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "critical"}, True),
        (" severity = critical ", {"severity": "critical"}, True),
        ('severity="critical"', {"severity": "warning"}, False),
        ('severity="critical"', {}, False),
        ('team=""', {}, True),  # an absent label is the empty string
        ("severity!=info", {"severity": "warning"}, True),
        ('severity!="info"', {"severity": "info"}, False),
        ("severity!=info", {}, True),
        ('team=~"risk|fraud"', {"team": "fraud"}, True),
        ('team=~"risk|fraud"', {"team": "ml"}, False),
        ("team=~risk", {"team": "risky"}, False),  # the whole value, not a search
        ("team=~isk", {"team": "risk"}, False),
        ('team=~"r.*"', {"team": "risk"}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team=~"(?i)RISK"', {"team": "risk"}, True),
        ('team!~"risk|fraud"', {"team": "ml"}, True),
        ('team!~"risk|fraud"', {"team": "risk"}, False),
        ("team!~risk", {"team": "risky"}, True),
        ('team!~".+"', {}, True),
        ('subject="a b"', {"subject": "a b"}, True),
        ('subject="x=y"', {"subject": "x=y"}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], matches: bool) -> None:
    assert Matcher.parse(text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "shown"),
    [("team = risk", 'team="risk"'), ('team=~"a|b"', 'team=~"a|b"'), ("x!=", 'x!=""')],
)
def test_a_matcher_is_shown_as_alertmanager_writes_it(text: str, shown: str) -> None:
    assert str(Matcher.parse(text)) == shown
    assert Matcher.parse(shown) == Matcher.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "team",
        "team~risk",
        "=risk",
        "1team=risk",
        "te-am=risk",
        'team=~"(risk"',
        "team!~*",
        'team="ri\nsk"',
        'team=~"(?a)',  # flags not at the start once the lone quote is kept
        "team=~\\",
    ],
)
def test_bad_matchers_are_refused_by_the_parser_and_the_file_alike(text: str) -> None:
    with pytest.raises(ValueError, match=r"matcher|regular expression"):
        Matcher.parse(text)
    with pytest.raises(ValidationError) as caught:
        RouteSpec.model_validate({"matchers": [text]})
    assert [error["loc"] for error in caught.value.errors()] == [("matchers", 0)]


@pytest.mark.parametrize(
    ("text", "value"),
    [('team=~"*', '"*'), ('team=""risk""', '"risk"'), ('team=~"a"b"', 'a"b'), ("team=", "")],
)
def test_odd_but_valid_matchers_are_accepted_by_both(text: str, value: str) -> None:
    assert Matcher.parse(text).value == value  # one pair of quotes comes off, no more
    RouteSpec.model_validate({"matchers": [text]})


# --- secrets -----------------------------------------------------------------------------


def test_secrets_come_from_the_environment(tmp_path: Path) -> None:
    routing = load_routing(write(tmp_path, EXAMPLE))
    built = build_integrations(routing.receivers, ENVIRON)
    assert {name: sorted(found) for name, found in built.items()} == {
        "ml-team": ["slack[0]"],
        "ml-oncall": ["email[0]", "slack[0]"],
        "risk": [],
    }
    webhook = built["ml-team"]["slack[0]"]
    assert isinstance(webhook, SlackWebhookNotifier)
    assert webhook._url == ENVIRON["SLACK_ML_TEAM"]
    bot = built["ml-oncall"]["slack[0]"]
    assert isinstance(bot, SlackBotNotifier)
    assert (bot._token, bot._channel) == (ENVIRON["SLACK_BOT_TOKEN"], "#ml-oncall")
    assert SECRET not in repr(bot)
    email = built["ml-oncall"]["email[0]"]
    assert isinstance(email, EmailNotifier)
    settings = email._settings
    assert (settings.username, settings.password) == ("driftline", SECRET)
    assert settings.recipients == ("oncall@example.com", "lead@example.com")
    assert (settings.host, settings.port, settings.security) == ("smtp.example.com", 465, "tls")
    assert SECRET not in repr(settings)


def test_secrets_come_from_files_trimmed(tmp_path: Path) -> None:
    files = {"webhook": "https://hooks.slack.com/x", "token": "xoxb-1", "password": SECRET}
    for name, value in files.items():
        (tmp_path / name).write_text(f"{value}\n", encoding="utf-8")  # as `echo` writes it
    document = example()
    document["receivers"][0]["slack"][0] = {"webhook_url_file": str(tmp_path / "webhook")}
    oncall = document["receivers"][1]
    oncall["slack"][0] = {"token_file": str(tmp_path / "token"), "channel": "C0123"}
    del oncall["email"][0]["password_env"]
    oncall["email"][0]["password_file"] = str(tmp_path / "password")
    routing = load_routing(write(tmp_path, yaml.safe_dump(document)))
    built = build_integrations(routing.receivers, {})  # nothing from the environment
    webhook, bot, email = (
        built["ml-team"]["slack[0]"],
        built["ml-oncall"]["slack[0]"],
        built["ml-oncall"]["email[0]"],
    )
    assert isinstance(webhook, SlackWebhookNotifier) and webhook._url == files["webhook"]
    assert isinstance(bot, SlackBotNotifier) and bot._token == files["token"]
    assert isinstance(email, EmailNotifier) and email._settings.password == SECRET


def test_the_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    routing = load_routing(write(tmp_path, EXAMPLE))
    webhook = build_integrations(routing.receivers)["ml-team"]["slack[0]"]
    assert isinstance(webhook, SlackWebhookNotifier) and webhook._url == ENVIRON["SLACK_ML_TEAM"]


def _unset(name: str) -> Callable[[Path, dict[str, Any], dict[str, str]], None]:
    def change(tmp_path: Path, document: dict[str, Any], environ: dict[str, str]) -> None:
        del environ[name]

    return change


def _blank(name: str) -> Callable[[Path, dict[str, Any], dict[str, str]], None]:
    def change(tmp_path: Path, document: dict[str, Any], environ: dict[str, str]) -> None:
        environ[name] = "  \n"

    return change


def _password_file(content: bytes | None) -> Callable[[Path, dict[str, Any], dict[str, str]], None]:
    """The SMTP password from a file holding ``content`` (None: no such file; b"/": a dir)."""

    def change(tmp_path: Path, document: dict[str, Any], environ: dict[str, str]) -> None:
        path = tmp_path / "secrets" / "smtp-password"
        if content == b"/":
            path.mkdir(parents=True)
        elif content is not None:
            path.parent.mkdir()
            path.write_bytes(content)
        email = document["receivers"][1]["email"][0]
        del email["password_env"]
        email["password_file"] = str(path)

    return change


def _ca_file(tmp_path: Path, document: dict[str, Any], environ: dict[str, str]) -> None:
    document["receivers"][1]["email"][0]["ca_file"] = str(tmp_path / "no-ca.pem")


UNREADABLE: list[tuple[Callable[[Path, dict[str, Any], dict[str, str]], None], list[str]]] = [
    (_unset("SLACK_ML_TEAM"), ["receiver 'ml-team' slack[0] webhook URL", "SLACK_ML_TEAM"]),
    (_blank("SLACK_ML_TEAM"), ["receiver 'ml-team' slack[0]", "SLACK_ML_TEAM", "empty"]),
    (_unset("SLACK_BOT_TOKEN"), ["receiver 'ml-oncall' slack[0] bot token", "SLACK_BOT_TOKEN"]),
    (_unset("SMTP_PASSWORD"), ["receiver 'ml-oncall' email[0] SMTP password", "SMTP_PASSWORD"]),
    (_password_file(None), ["receiver 'ml-oncall' email[0]", "smtp-password", "cannot read"]),
    (_password_file(b"/"), ["receiver 'ml-oncall' email[0]", "smtp-password", "cannot read"]),
    (_password_file(b""), ["receiver 'ml-oncall' email[0]", "smtp-password", "is empty"]),
    (_password_file(b" \n"), ["receiver 'ml-oncall' email[0]", "smtp-password", "is empty"]),
    (
        _password_file(b"\xff" + SECRET.encode()),
        ["receiver 'ml-oncall' email[0]", "smtp-password", "not UTF-8"],
    ),
    (_ca_file, ["receiver 'ml-oncall' email[0]", "ca_file", "no-ca.pem"]),
]


@pytest.mark.parametrize(
    ("change", "named"), UNREADABLE, ids=[" ".join(named[1:]) for _, named in UNREADABLE]
)
def test_a_secret_that_cannot_be_read_is_named_never_shown(
    tmp_path: Path,
    change: Callable[[Path, dict[str, Any], dict[str, str]], None],
    named: list[str],
) -> None:
    document, environ = example(), dict(ENVIRON)
    change(tmp_path, document, environ)
    routing = load_routing(write(tmp_path, yaml.safe_dump(document)))
    with pytest.raises(ConfigurationError) as caught:
        build_integrations(routing.receivers, environ)
    message = str(caught.value)
    for part in named:
        assert part in message
    assert SECRET not in message
    # Nothing chained to the error (an OSError, a decoding error) can show it either.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
