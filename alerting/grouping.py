"""Which groups get a notification now: Alertmanager's grouping, decided as a pure function.

:func:`plan` takes every firing alert, the silences in force, each group's last notice and
the time, and says which groups to notify and how each group's record changes. The relay
(:mod:`alerting.dispatch`) runs it in one transaction with the notifications it decides,
so a notice is planned once however many relays run.

For one group (a receiver, a route and the values of its ``group_by`` labels):

- its first notice waits ``group_wait`` after its first alert, so alerts of the same
  window arrive together;
- after a notice, a change (an alert added or gone) is told after ``group_interval``;
- an unchanged firing group is told again after ``repeat_interval``;
- when every alert it told about has resolved, it gets one resolved notice (if the
  receiver ``send_resolved``) after ``group_interval``, and the group is forgotten.

Muted alerts (a silence in force, or inhibited by another firing alert) are left out of
notices but are not resolved: a group whose alerts are all muted says nothing about them
(only, as above, that alerts it told about and that are gone have resolved).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from alerting.matchers import match_all, parse_all
from alerting.routing import Route, Routing
from storage.alerts import AlertRecord, SilenceRecord

GroupId = tuple[str, str]  # (receiver, group key)


@dataclass(frozen=True)
class GroupState:
    """What a group was last told (``last_sent_at`` None: nothing yet)."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    first_seen_at: datetime
    last_sent_at: datetime | None = None
    notified: tuple[str, ...] = ()  # fingerprints of the firing alerts last told
    seq: int = 0


@dataclass(frozen=True)
class Notice:
    """A notification to send to every integration of ``group.receiver``."""

    group: GroupState  # as it is after this notice (its seq is the notice's)
    status: Literal["firing", "resolved"]
    firing: tuple[AlertRecord, ...]
    resolved: tuple[AlertRecord, ...]
    repeat: bool = False


@dataclass
class Plan:
    notices: list[Notice] = field(default_factory=list)
    save: list[GroupState] = field(default_factory=list)
    forget: list[GroupId] = field(default_factory=list)


@dataclass
class _Entry:
    route: Route
    labels: dict[str, str]
    present: set[str] = field(default_factory=set)  # firing, muted or not
    active: list[AlertRecord] = field(default_factory=list)  # firing and not muted


def muted(
    alerts: Sequence[AlertRecord],
    silences: Iterable[SilenceRecord],
    routing: Routing,
    now: datetime,
) -> dict[str, str]:
    """Fingerprints of muted alerts, each with why (``silenced by …`` / ``inhibited by …``)."""
    reasons: dict[str, str] = {}
    in_force = [(s.id, parse_all(s.matchers)) for s in silences if s.active(now)]
    for alert in alerts:
        for silence_id, matchers in in_force:
            if match_all(matchers, alert.labels):
                reasons[alert.fingerprint] = f"silenced by {silence_id}"
                break
    for rule in routing.inhibit_rules:
        # Sources keyed by their ``equal`` labels: one lookup per target, not a scan of all
        # sources (a scan made every tick quadratic in the firing alerts).
        sources: dict[tuple[str | None, ...], list[AlertRecord]] = defaultdict(list)
        for alert in alerts:
            if match_all(rule.source, alert.labels):
                sources[tuple(alert.labels.get(n) for n in rule.equal)].append(alert)
        if not sources:
            continue
        for target in alerts:
            if target.fingerprint in reasons or not match_all(rule.target, target.labels):
                continue
            key = tuple(target.labels.get(n) for n in rule.equal)
            for source in sources.get(key, ()):
                if source.fingerprint != target.fingerprint:
                    reasons[target.fingerprint] = f"inhibited by {source.fingerprint}"
                    break
    return reasons


def plan(
    firing: Sequence[AlertRecord],
    known: Mapping[str, AlertRecord],
    silences: Iterable[SilenceRecord],
    groups: Mapping[GroupId, GroupState],
    routing: Routing,
    now: datetime,
) -> Plan:
    """Decide the notices due at ``now``.

    ``firing`` are the firing alerts; ``known`` every alert a group was told about (to
    describe those that resolved since); ``groups`` every group's stored state.
    """
    silenced = muted(firing, silences, routing, now)
    entries: dict[GroupId, _Entry] = {}
    for alert in firing:
        for route in routing.routes_for(alert.labels):
            key = (route.receiver, route.group_key(alert.labels))
            entry = entries.setdefault(key, _Entry(route, route.group_labels(alert.labels)))
            entry.present.add(alert.fingerprint)
            if alert.fingerprint not in silenced:
                entry.active.append(alert)
    result = Plan()
    for key in sorted(set(entries) | set(groups)):
        found = entries.get(key)
        route = found.route if found else _route_of(routing, key[1])
        state = groups.get(key)
        if state is None:
            if found is None or not found.active:
                continue
            state = GroupState(key[0], key[1], found.labels, first_seen_at=now)
            told = len(result.notices)
            _decide(result, state, found, route, known, routing, now)
            if len(result.notices) == told:
                result.save.append(state)  # a new group waiting for its group_wait
            continue
        _decide(result, state, found, route, known, routing, now)
    return result


def _decide(
    result: Plan,
    state: GroupState,
    entry: _Entry | None,
    route: Route,
    known: Mapping[str, AlertRecord],
    routing: Routing,
    now: datetime,
) -> None:
    active = sorted(entry.active if entry else [], key=lambda a: a.fingerprint)
    present = entry.present if entry else set()
    active_ids = tuple(a.fingerprint for a in active)
    if state.last_sent_at is None:
        if not present:
            result.forget.append((state.receiver, state.group_key))
        elif active and now >= state.first_seen_at + _seconds(
            route.wait_for(a.severity for a in active)
        ):
            _notify(result, state, "firing", active, (), now)
        return
    gone = tuple(known[f] for f in state.notified if f not in present and f in known)
    gone_ids = {f for f in state.notified if f not in present}
    due_change = now >= state.last_sent_at + _seconds(route.group_interval)
    if not active:
        # Nothing to tell firing (gone, or everything left is muted): after group_interval,
        # say that what was told and is gone resolved, and forget the group once it is empty.
        # Muted alerts are neither told nor resolved.
        if due_change:
            receiver = routing.receivers.get(state.receiver)
            if gone and (receiver is None or receiver.send_resolved):
                _notify(result, state, "resolved", (), gone, now)
            if not present:
                result.forget.append((state.receiver, state.group_key))
        return
    if set(active_ids) != set(state.notified):
        if due_change:
            receiver = routing.receivers.get(state.receiver)
            tell = receiver is None or receiver.send_resolved
            resolved = gone if gone_ids and tell else ()
            _notify(result, state, "firing", active, resolved, now)
    elif now >= state.last_sent_at + _seconds(route.repeat_interval):
        _notify(result, state, "firing", active, (), now, repeat=True)


def _notify(
    result: Plan,
    state: GroupState,
    status: Literal["firing", "resolved"],
    firing: Sequence[AlertRecord],
    resolved: Sequence[AlertRecord],
    now: datetime,
    *,
    repeat: bool = False,
) -> None:
    after = replace(
        state,
        last_sent_at=now,
        notified=tuple(a.fingerprint for a in firing),
        seq=state.seq + 1,
    )
    result.notices.append(Notice(after, status, tuple(firing), tuple(resolved), repeat))
    result.save.append(after)


def _route_of(routing: Routing, group_key: str) -> Route:
    """The route a stored group came from (the root if the file no longer has it)."""
    path = group_key.split(":", 1)[0]
    stack = [routing.root]
    while stack:
        route = stack.pop()
        if route.path == path:
            return route
        stack.extend(route.children)
    return routing.root


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
