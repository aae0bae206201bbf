"""The routing file, loaded and resolved: which receivers and groups an alert goes to.

As in Alertmanager, an alert enters at the root route and descends: the first child whose
matchers all match takes it (and the next siblings too when that child says
``continue``); a route none of whose children match takes the alert itself. Settings a
route leaves unset come from its parent; the root's defaults are Alertmanager's
(``group_wait`` 30 s, ``group_interval`` 5 min, ``repeat_interval`` 4 h) except
``group_by``, which defaults to ``["model"]``: one message per model, not one for
everything, and ``group_wait`` for a group holding a critical alert, which is 0 s unless
a route on the way sets it: a critical problem is told at once, warnings are gathered.

A group is (route, values of the ``group_by`` labels); its key names the route by its
position in the tree, so two routes to one receiver never share a group.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from alerting.matchers import Matcher, match_all, parse_all
from driftline.errors import ConfigurationError
from schemas.alert_routing import (
    DEFAULT_INHIBIT_RULES,
    AlertRouting,
    InhibitRuleSpec,
    ReceiverSpec,
    RouteSpec,
)
from schemas.config_file import parse_config, read_mapping
from schemas.validation_messages import describe_validation_error

DEFAULT_GROUP_BY = ("model",)
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_CRITICAL_GROUP_WAIT = 0.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


@dataclass(frozen=True)
class Route:
    """A route with its settings resolved (inherited where unset)."""

    path: str  # "0", "0.1", ...: its place in the tree
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...]
    group_wait: float | None  # None: unset on the way, see :meth:`wait_for`
    group_interval: float
    repeat_interval: float
    continue_: bool
    children: tuple[Route, ...]

    def wait_for(self, severities: Iterable[str]) -> float:
        """The group_wait of a group whose alerts have ``severities``."""
        if self.group_wait is not None:
            return self.group_wait
        critical = any(severity == "critical" for severity in severities)
        return DEFAULT_CRITICAL_GROUP_WAIT if critical else DEFAULT_GROUP_WAIT

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by == ("...",):
            return dict(sorted(labels.items()))
        return {name: labels.get(name, "") for name in self.group_by}

    def group_key(self, labels: Mapping[str, str]) -> str:
        # JSON, so a value holding "," or "=" cannot make two groups' keys equal.
        values = json.dumps(self.group_labels(labels), ensure_ascii=False, separators=(",", ":"))
        return f"{self.path}:{values}"


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    @classmethod
    def of(cls, spec: InhibitRuleSpec) -> InhibitRule:
        return cls(
            parse_all(spec.source_matchers), parse_all(spec.target_matchers), tuple(spec.equal)
        )


@dataclass(frozen=True)
class Routing:
    """The resolved routing file."""

    root: Route
    receivers: dict[str, ReceiverSpec]
    inhibit_rules: tuple[InhibitRule, ...]
    dashboard_url: str | None
    top_n: int

    @classmethod
    def of(cls, spec: AlertRouting) -> Routing:
        inhibit = DEFAULT_INHIBIT_RULES if spec.inhibit_rules is None else spec.inhibit_rules
        return cls(
            root=_resolve(spec.route, None, "0"),
            receivers={receiver.name: receiver for receiver in spec.receivers},
            inhibit_rules=tuple(InhibitRule.of(rule) for rule in inhibit),
            dashboard_url=spec.dashboard_url.rstrip("/") if spec.dashboard_url else None,
            top_n=spec.top_n,
        )

    def routes_for(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (at least the root)."""
        return _match(self.root, labels) or [self.root]


def _resolve(spec: RouteSpec, parent: Route | None, path: str) -> Route:
    def inherit(value: float | None, inherited: float | None, default: float) -> float:
        if value is not None:
            return value
        return inherited if inherited is not None else default

    if spec.group_by is not None:  # [] is set too: one group for the route, as in Alertmanager
        group_by: tuple[str, ...] = tuple(spec.group_by)
    else:
        group_by = parent.group_by if parent else DEFAULT_GROUP_BY
    route = Route(
        path=path,
        receiver=spec.receiver or (parent.receiver if parent else ""),
        matchers=parse_all(spec.matchers),
        group_by=group_by,
        group_wait=spec.group_wait
        if spec.group_wait is not None
        else (parent.group_wait if parent else None),
        group_interval=inherit(
            spec.group_interval, parent.group_interval if parent else None, DEFAULT_GROUP_INTERVAL
        ),
        repeat_interval=inherit(
            spec.repeat_interval,
            parent.repeat_interval if parent else None,
            DEFAULT_REPEAT_INTERVAL,
        ),
        continue_=spec.continue_,
        children=(),
    )
    children = tuple(
        _resolve(child, route, f"{path}.{index}") for index, child in enumerate(spec.routes)
    )
    return Route(**{**route.__dict__, "children": children})


def _match(route: Route, labels: Mapping[str, str]) -> list[Route]:
    if not match_all(route.matchers, labels):
        return []
    taken: list[Route] = []
    for child in route.children:
        found = _match(child, labels)
        if found:
            taken += found
            if not child.continue_:
                break
    return taken or [route]


def load_routing(path: str | Path) -> Routing:
    """Read and check a routing file.

    Raises
    ------
    ConfigurationError
        Naming the file and every bad key (``route.routes[0].group_wait: …``).
    """
    path = Path(path)
    data = read_mapping(path, "route and receivers (or alert_routing)", "the alert routing file")
    if "alert_routing" in data or "models" in data:
        # The one-file form (schemas/config_file.py): all of it is checked, its routing used.
        routing = parse_config(data, path).alert_routing
        if routing is None:
            raise ConfigurationError(f"{path}: no alert_routing section to deliver alerts by")
        return Routing.of(routing)
    try:
        return Routing.of(AlertRouting.model_validate(data))
    except ValidationError as error:
        reason = describe_validation_error(error, limit=None, model=AlertRouting)
        raise ConfigurationError(f"{path}: {reason}") from None
