"""The alert routing file (``--alerts alerts.yaml``): routes, receivers, inhibition.

Shaped after Prometheus Alertmanager's configuration so its users feel at home: a tree of
routes with label matchers and inherited settings (``group_by``, ``group_wait``,
``group_interval``, ``repeat_interval``, ``continue``), named receivers bundling Slack and
e-mail, and inhibition rules. :mod:`alerting.routing` resolves it; the JSON Schema is
published in ``schemas/json/alert-routing.v1.schema.json``.

Secrets never sit in this file in clear: a webhook URL, a bot token or an SMTP password is
named by the environment variable (``…_env``) or the file (``…_file``, e.g. a mounted
Kubernetes secret) that holds it. A key such as ``webhook_url`` or ``password`` is refused,
with a message saying which key to use instead.

Durations are numbers of seconds or strings such as ``"30s"``, ``"5m"``, ``"4h"``, ``"1d"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from schemas.alert_rules import LabelName

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
# Read exactly as alerting.matchers.Matcher.parse reads it, so a matcher accepted here parses.
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_CONFIG = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration: write e.g. 30s, 5m, 4h or 1d")
        return float(found.group(1)) * _UNITS[found.group(2)]
    return value


def _matcher(text: str) -> str:
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not a matcher: write label=value, label!=value, label=~regex "
            "or label!~regex"
        )
    _, op, pattern = found.groups()
    if len(pattern) >= 2 and pattern[0] == pattern[-1] == '"':
        pattern = pattern[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{text!r}: not a regular expression: {error}") from None
    return text


# The JSON Schema is spelt out: pydantic would describe only the number form, and write the
# bound after a validator as a non-standard "ge" keyword.
Duration = Annotated[
    float,
    BeforeValidator(_seconds),
    Field(ge=0, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": _DURATION.pattern},
            ]
        }
    ),
]
MatcherText = Annotated[str, AfterValidator(_matcher)]
ReceiverName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _refuse_clear(data: Any, secrets: dict[str, str]) -> Any:
    if isinstance(data, dict):
        for clear, instead in secrets.items():
            if clear in data:
                raise ValueError(
                    f"{clear}: secrets are not written in the routing file; give "
                    f"{instead}_env (an environment variable) or {instead}_file (a file) instead"
                )
    return data


class SlackSpec(BaseModel):
    """Slack through an incoming webhook, or a bot token and a channel (``chat.postMessage``)."""

    model_config = _CONFIG

    webhook_url_env: EnvName | None = None
    webhook_url_file: str | None = None
    token_env: EnvName | None = None
    token_file: str | None = None
    channel: str | None = Field(default=None, description="Bot only: a channel id or #name")
    api_url: str | None = Field(
        default=None, description="Bot only: the Web API base URL (default Slack's)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_clear_secrets(cls, data: Any) -> Any:
        return _refuse_clear(data, {"webhook_url": "webhook_url", "token": "token"})

    @model_validator(mode="after")
    def _one_way(self) -> SlackSpec:
        webhook = self.webhook_url_env is not None or self.webhook_url_file is not None
        bot = self.token_env is not None or self.token_file is not None
        if webhook == bot:
            raise ValueError(
                "give either webhook_url_env/webhook_url_file (incoming webhook) or "
                "token_env/token_file with channel (bot), exactly one of them"
            )
        if bot and not self.channel:
            raise ValueError("channel: a bot token needs the channel to post to")
        return self


class EmailSpec(BaseModel):
    """E-mail through an SMTP server, to one or more recipients."""

    model_config = _CONFIG

    to: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    sender: str = Field(alias="from", description="The From address")
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (implicit, port 465) or none"
    )
    username: str | None = None
    password_env: EnvName | None = None
    password_file: str | None = None
    ca_file: str | None = Field(default=None, description="CA bundle to trust (private CAs)")

    @model_validator(mode="before")
    @classmethod
    def _no_clear_secrets(cls, data: Any) -> Any:
        return _refuse_clear(data, {"password": "password"})

    @model_validator(mode="after")
    def _auth_complete(self) -> EmailSpec:
        has_password = self.password_env is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("username and password_env/password_file go together")
        return self


class ReceiverSpec(BaseModel):
    """A named destination: any number of Slack and e-mail integrations (none: muted)."""

    model_config = _CONFIG

    name: ReceiverName
    send_resolved: bool = Field(default=True, description="Also say when a group clears")
    slack: list[SlackSpec] = Field(default_factory=list)
    email: list[EmailSpec] = Field(default_factory=list)


class RouteSpec(BaseModel):
    """A node of the routing tree; unset settings are inherited from the parent."""

    model_config = _CONFIG

    receiver: ReceiverName | None = None
    matchers: list[MatcherText] = Field(default_factory=list)
    group_by: list[LabelName | Literal["..."]] | None = Field(
        default=None, description='Labels that split alerts into groups; ["..."]: every label'
    )
    group_wait: Duration | None = Field(
        default=None,
        description="Wait before a group's first message; unset on the way: 30s, and 0s for "
        "a group holding a critical alert",
    )
    group_interval: Duration | None = Field(
        default=None, description="Wait before telling a group about changes"
    )
    repeat_interval: Duration | None = Field(
        default=None, description="Wait before repeating an unchanged firing group"
    )
    continue_: bool = Field(
        default=False, alias="continue", description="Keep matching the next sibling routes"
    )
    routes: list[RouteSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _every_label_alone(self) -> RouteSpec:
        if self.group_by is not None and "..." in self.group_by and len(self.group_by) > 1:
            raise ValueError('group_by: "..." (every label) cannot be combined with other labels')
        return self


class InhibitRuleSpec(BaseModel):
    """Alerts matching ``target_matchers`` are muted while an alert matching
    ``source_matchers`` fires with the same values of the ``equal`` labels."""

    model_config = _CONFIG

    source_matchers: list[MatcherText] = Field(min_length=1)
    target_matchers: list[MatcherText] = Field(min_length=1)
    equal: list[LabelName] = Field(default_factory=list)


DEFAULT_INHIBIT_RULES = (
    # A critical alert says it all: its warning about the same subject only adds noise.
    InhibitRuleSpec(
        source_matchers=['severity="critical"'],
        target_matchers=['severity="warning"'],
        equal=["model", "subject"],
    ),
    # A model without data (or too little: a volume rule) has no drift to speak of.
    InhibitRuleSpec(
        source_matchers=['kind="volume"'],
        target_matchers=['kind=~"feature_drift|dataset_drift|output_drift"'],
        equal=["model"],
    ),
)


class AlertRouting(BaseModel):
    """Where alerts go: the routing tree, the receivers and the inhibition rules."""

    model_config = _CONFIG

    route: RouteSpec
    receivers: list[ReceiverSpec] = Field(min_length=1)
    inhibit_rules: list[InhibitRuleSpec] | None = Field(
        default=None,
        description="null: critical mutes warning on the same subject, no data mutes drift",
    )
    dashboard_url: str | None = Field(
        default=None, description="Base URL of the Driftline API/dashboard, for links"
    )
    top_n: int = Field(default=10, ge=1, le=50, description="Alerts listed per message")

    @model_validator(mode="after")
    def _receivers_known(self) -> AlertRouting:
        names = [receiver.name for receiver in self.receivers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"receivers: names must be unique, repeated: {repeated}")
        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver")
        if self.route.matchers:
            raise ValueError(
                "route.matchers: the root route takes every alert; put matchers on its routes"
            )
        for path, route in _walk(self.route, "route"):
            if route.receiver is not None and route.receiver not in names:
                raise ValueError(
                    f"{path}.receiver: no receiver named {route.receiver!r} (receivers: {names})"
                )
        return self


def _walk(route: RouteSpec, path: str) -> list[tuple[str, RouteSpec]]:
    found = [(path, route)]
    for index, child in enumerate(route.routes):
        found += _walk(child, f"{path}.routes[{index}]")
    return found
