"""Alert grouping as timelines: a simulated relay applies each plan and feeds it back.

:class:`Relay` does what :mod:`alerting.dispatch` does with a :class:`~alerting.grouping.Plan`
(save the states, then delete the forgotten groups, pass the states back next round), over
a clock the test moves, so each test reads as "at t=…, this fires; at t=…, this is told".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alerting.grouping import GroupId, GroupState, Notice, plan
from alerting.routing import Routing
from schemas.alert_routing import AlertRouting
from storage.alerts import AlertRecord, SilenceRecord
from tests.examples import examples

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
WINDOW = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)


def alert(
    subject: str = "income",
    model: str = "churn",
    *,
    severity: str = "warning",
    kind: str = "feature_drift",
    rule: str | None = None,
) -> AlertRecord:
    rule = rule or f"{kind}_{severity}"
    return AlertRecord(
        fingerprint=f"{model}/{rule}/{subject}",
        model_id=model,
        model_version="v3",
        rule=rule,
        subject=subject,
        severity=severity,
        status="firing",
        labels={
            "model": model,
            "version": "v3",
            "rule": rule,
            "kind": kind,
            "subject": subject,
            "severity": severity,
        },
        summary=f"{subject} drifted (psi 0.31 > 0.2)",
        evidence={"score": 0.31, "threshold": 0.2},
        window_start=WINDOW,
        window_end=WINDOW + timedelta(hours=1),
        starts_at=WINDOW,
        resolved_at=None,
        updated_at=WINDOW,
    )


def routing(
    route: dict[str, Any] | None = None,
    *,
    receivers: list[dict[str, Any]] | None = None,
    **top: Any,
) -> Routing:
    """Receiver "team", grouped by model: wait 30 s, changes after 5 min, repeats after 4 h."""
    spec: dict[str, Any] = {
        "receiver": "team",
        "group_by": ["model"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    spec.update(route or {})
    return Routing.of(
        AlertRouting.model_validate(
            {"route": spec, "receivers": receivers or [{"name": "team"}], **top}
        )
    )


def silence(*matchers: str, start: float = -60.0, end: float = 3600.0) -> SilenceRecord:
    """A silence in force from ``start`` to ``end`` seconds after T0."""
    return SilenceRecord(
        id=f"silence-{'-'.join(matchers)}-{start}-{end}",
        matchers=list(matchers),
        starts_at=T0 + timedelta(seconds=start),
        ends_at=T0 + timedelta(seconds=end),
        created_by="oncall",
        comment="known issue",
        created_at=T0,
    )


@dataclass
class Relay:
    """What the alert relay does with plans, over a clock that starts at T0."""

    routing: Routing
    now: datetime = T0
    firing: dict[str, AlertRecord] = field(default_factory=dict)
    silences: list[SilenceRecord] = field(default_factory=list)
    groups: dict[GroupId, GroupState] = field(default_factory=dict)
    records: dict[str, AlertRecord] = field(default_factory=dict)  # every alert ever seen
    sent: list[tuple[datetime, Notice]] = field(default_factory=list)
    forgotten: list[tuple[datetime, GroupId]] = field(default_factory=list)

    @property
    def t(self) -> float:
        return (self.now - T0).total_seconds()

    def fire(self, *alerts: AlertRecord) -> None:
        for a in alerts:
            self.firing[a.fingerprint] = a
            self.records[a.fingerprint] = a

    def clear(self, *alerts: AlertRecord) -> None:
        for a in alerts:
            del self.firing[a.fingerprint]

    def tick(self, seconds: float = 0.0) -> list[Notice]:
        """Move the clock by ``seconds`` and plan once, as one relay round."""
        self.now += timedelta(seconds=seconds)
        told = {f for g in self.groups.values() for f in g.notified}
        known = {f: self.records[f] for f in told if f in self.records}
        decided = plan(
            list(self.firing.values()), known, self.silences, self.groups, self.routing, self.now
        )
        for state in decided.save:
            self.groups[(state.receiver, state.group_key)] = state
        for group_id in decided.forget:
            del self.groups[group_id]
            self.forgotten.append((self.now, group_id))
        self.sent += [(self.now, notice) for notice in decided.notices]
        return decided.notices

    def run_to(self, t: float, every: float = 10.0) -> list[tuple[float, Notice]]:
        """Rounds every ``every`` seconds until ``t`` seconds after T0: what was sent when."""
        out: list[tuple[float, Notice]] = []
        while self.t < t:
            notices = self.tick(min(every, t - self.t))
            out += [(self.t, notice) for notice in notices]
        return out


def subjects(alerts: tuple[AlertRecord, ...]) -> list[str]:
    return sorted(a.subject for a in alerts)


INCOME, AGE, TENURE = alert("income"), alert("age"), alert("tenure")


# --- group_wait -------------------------------------------------------------------------


def test_first_notice_waits_group_wait_and_gathers_what_arrived_meanwhile() -> None:
    relay = Relay(routing())
    relay.fire(INCOME)
    assert relay.tick() == []
    assert relay.run_to(20) == []
    relay.fire(AGE)  # the same window's next alert, 20 s later
    assert relay.run_to(29, every=1) == []
    [(when, notice)] = relay.run_to(30, every=1)
    assert when == 30
    assert notice.status == "firing" and not notice.repeat
    assert subjects(notice.firing) == ["age", "income"] and notice.resolved == ()
    assert notice.group.seq == 1 and notice.group.first_seen_at == T0
    assert notice.group.last_sent_at == T0 + timedelta(seconds=30)
    assert notice.group.group_labels == {"model": "churn"}
    assert relay.run_to(600) == []


def test_unset_group_wait_tells_a_critical_alert_at_once_and_gathers_warnings() -> None:
    unset = {"group_wait": None}
    relay = Relay(routing(unset))
    relay.fire(INCOME)
    assert relay.tick() == [] and relay.run_to(29, every=1) == []
    [(when, _)] = relay.run_to(30, every=1)
    assert when == 30
    critical = Relay(routing(unset))
    critical.fire(alert("income", severity="critical"))
    [notice] = critical.tick()
    assert subjects(notice.firing) == ["income"]
    explicit = Relay(routing())  # a group_wait the file sets holds critical alerts too
    explicit.fire(alert("income", severity="critical"))
    assert explicit.tick() == [] and explicit.run_to(29, every=1) == []


def test_group_wait_zero_notifies_in_the_same_round() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME)
    [notice] = relay.tick()
    assert notice.group.first_seen_at == notice.group.last_sent_at == T0
    assert relay.tick() == []  # a second relay planning at the same instant adds nothing


def test_alerts_of_two_models_form_two_groups_with_one_notice_each() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE, alert("amount", "fraud"))
    notices = relay.tick()
    assert [(n.group.group_labels, subjects(n.firing)) for n in notices] == [
        ({"model": "churn"}, ["age", "income"]),
        ({"model": "fraud"}, ["amount"]),
    ]
    assert len(relay.groups) == 2
    assert relay.run_to(3600) == []


# --- changes and repeats ----------------------------------------------------------------


def test_an_alert_joining_a_notified_group_is_told_after_group_interval_with_all() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE)
    [first] = relay.tick()
    assert relay.run_to(60) == []
    relay.fire(TENURE)
    assert relay.run_to(299, every=1) == []  # group_interval counts from the last notice
    [(when, notice)] = relay.run_to(300, every=1)
    assert when == 300
    assert subjects(notice.firing) == ["age", "income", "tenure"]
    assert notice.resolved == () and not notice.repeat
    assert notice.group.seq == first.group.seq + 1
    assert relay.run_to(3600) == []


def test_a_change_after_group_interval_is_told_at_the_next_round() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME)
    relay.tick()
    assert relay.run_to(1000) == []
    relay.fire(AGE)
    [(when, notice)] = relay.run_to(1100)
    assert when == 1010 and subjects(notice.firing) == ["age", "income"]


def test_an_unchanged_group_repeats_only_after_repeat_interval() -> None:
    relay = Relay(routing({"group_wait": 0, "repeat_interval": "1h"}))
    relay.fire(INCOME, AGE)
    [first] = relay.tick()
    assert not first.repeat
    assert relay.run_to(3599, every=1) == []
    [(when, again)] = relay.run_to(3600, every=1)
    assert when == 3600
    assert again.repeat and again.status == "firing" and again.resolved == ()
    assert subjects(again.firing) == ["age", "income"]
    assert again.group.seq == 2
    assert [(w, n.repeat) for w, n in relay.run_to(7300)] == [(7200, True)]


# --- resolution -------------------------------------------------------------------------


def test_resolved_group_gets_one_resolved_notice_after_group_interval_then_is_forgotten() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE)
    relay.tick()
    relay.run_to(60)
    relay.clear(INCOME, AGE)
    assert relay.run_to(299, every=1) == []
    [(when, notice)] = relay.run_to(300, every=1)
    assert when == 300
    assert notice.status == "resolved" and notice.firing == ()
    assert subjects(notice.resolved) == ["age", "income"]
    assert notice.group.seq == 2 and notice.group.notified == ()
    assert relay.groups == {}
    assert relay.run_to(86400, every=600) == []


def test_one_alert_resolving_is_listed_in_the_next_firing_notice() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE)
    relay.tick()
    relay.clear(AGE)
    [(when, notice)] = relay.run_to(600)
    assert when == 300
    assert notice.status == "firing"
    assert subjects(notice.firing) == ["income"] and subjects(notice.resolved) == ["age"]
    assert notice.group.notified == (INCOME.fingerprint,)
    # told once: the next notices neither list it again nor repeat early
    assert [(w, subjects(n.resolved)) for w, n in relay.run_to(4 * 3600 + 300)] == [
        (4 * 3600 + 300, [])
    ]


def test_resolving_then_firing_again_within_group_interval_is_no_change() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME)
    relay.tick()
    relay.clear(INCOME)
    relay.run_to(100)
    relay.fire(INCOME)
    assert relay.run_to(3600) == []
    assert len(relay.groups) == 1


def test_without_send_resolved_the_group_is_forgotten_silently() -> None:
    relay = Relay(routing({"group_wait": 0}, receivers=[{"name": "team", "send_resolved": False}]))
    relay.fire(INCOME)
    relay.tick()
    relay.clear(INCOME)
    assert relay.run_to(3600) == []
    assert relay.groups == {}
    [(when, _)] = relay.forgotten
    assert when == T0 + timedelta(seconds=300)


def test_a_group_resolved_before_its_group_wait_never_notifies() -> None:
    relay = Relay(routing())
    relay.fire(INCOME)
    relay.tick()
    relay.run_to(10)
    relay.clear(INCOME)
    assert relay.tick() == []
    assert relay.groups == {}
    assert relay.run_to(3600) == []


def test_a_group_formed_again_after_being_forgotten_starts_afresh() -> None:
    relay = Relay(routing({"group_wait": "30s"}))
    relay.fire(INCOME)
    relay.tick()
    relay.run_to(30)
    relay.clear(INCOME)
    [(_, resolved)] = relay.run_to(330)
    assert resolved.status == "resolved" and relay.groups == {}
    relay.fire(INCOME)
    [(when, notice)] = relay.run_to(400)
    assert when == 370  # its own group_wait, not the old group_interval
    assert notice.group.seq == 1
    assert notice.group.first_seen_at == T0 + timedelta(seconds=340)


# --- silences ---------------------------------------------------------------------------


def test_a_silence_in_force_mutes_exactly_the_alerts_it_matches() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.silences = [silence('model="churn"', 'subject="income"')]
    fraud_income = alert("income", "fraud")
    relay.fire(INCOME, AGE, fraud_income)
    notices = relay.tick()
    assert [(n.group.group_labels["model"], subjects(n.firing)) for n in notices] == [
        ("churn", ["age"]),
        ("fraud", ["income"]),
    ]
    assert relay.run_to(3000) == []


def test_a_group_whose_alerts_are_all_silenced_says_nothing() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.silences = [silence('model="churn"', end=600)]
    relay.fire(INCOME, AGE)
    assert relay.run_to(590) == []
    assert relay.groups == {}
    [(when, notice)] = relay.run_to(700)  # the silence ends at 600: told then
    assert when == 600 and subjects(notice.firing) == ["age", "income"]


def test_an_expired_or_future_silence_mutes_nothing() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.silences = [
        silence('model="churn"', start=-7200, end=-3600),
        silence('model="churn"', start=0.5, end=3600),  # starts after the first round
        silence('model="churn"', start=-60, end=0),  # ends_at is exclusive
    ]
    relay.fire(INCOME)
    [notice] = relay.tick()
    assert subjects(notice.firing) == ["income"]


def test_an_alert_silenced_after_its_notice_is_not_reported_resolved() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE)
    relay.tick()
    relay.run_to(60)
    relay.silences = [silence('subject="income"', start=60, end=86400)]
    told = relay.run_to(4 * 3600)
    # the notice after group_interval no longer lists it, and does not call it resolved
    assert [(w, n.status, subjects(n.firing), subjects(n.resolved)) for w, n in told] == [
        (300, "firing", ["age"], [])
    ]
    assert all(INCOME not in n.resolved for _, n in relay.sent)


def test_a_notified_group_all_silenced_says_nothing_and_is_kept() -> None:
    relay = Relay(routing({"group_wait": 0, "repeat_interval": "1h"}))
    relay.fire(INCOME)
    relay.tick()
    relay.silences = [silence('model="churn"', end=86400)]
    assert relay.run_to(6 * 3600, every=60) == []  # no repeat, no resolved notice
    assert len(relay.groups) == 1


def test_a_told_alert_resolving_while_the_rest_is_silenced_is_told_resolved() -> None:
    relay = Relay(routing({"group_wait": 0}))
    relay.fire(INCOME, AGE)
    relay.tick()
    relay.silences = [silence('subject="income"', end=86400)]
    [(_, firing)] = relay.run_to(300)
    assert subjects(firing.firing) == ["age"]
    relay.run_to(400)
    relay.clear(AGE)
    # not held back for as long as the silence lasts, and income is not called resolved
    [(when, notice)] = relay.run_to(80000, every=100)
    assert when == 600
    assert notice.status == "resolved" and subjects(notice.resolved) == ["age"]
    assert len(relay.groups) == 1  # income still fires, muted
    relay.silences = []
    [(when, again)] = relay.run_to(81000, every=100)
    assert when == 80100 and subjects(again.firing) == ["income"] and again.resolved == ()


# --- inhibition -------------------------------------------------------------------------


def test_critical_mutes_warning_on_the_same_model_and_subject_only() -> None:
    relay = Relay(routing({"group_wait": 0}))
    critical = alert("income", severity="critical")
    fraud_warning = alert("income", "fraud")
    relay.fire(critical, INCOME, AGE, fraud_warning)
    churn, fraud = relay.tick()
    assert sorted((a.subject, a.severity) for a in churn.firing) == [
        ("age", "warning"),
        ("income", "critical"),
    ]
    assert [(a.model_id, a.subject) for a in fraud.firing] == [("fraud", "income")]
    # the critical clears: the warning it hid is told at the next change
    relay.clear(critical)
    [(when, notice)] = relay.run_to(600)
    assert when == 300
    assert sorted((a.subject, a.severity) for a in notice.firing) == [
        ("age", "warning"),
        ("income", "warning"),
    ]
    assert [a.severity for a in notice.resolved] == ["critical"]


def test_a_volume_alert_mutes_the_drift_alerts_of_its_model_only() -> None:
    relay = Relay(routing({"group_wait": 0}))
    volume = alert("rows", severity="critical", kind="volume")
    dataset = alert("dataset", kind="dataset_drift")
    output = alert("score", kind="output_drift")
    metric = alert("auc", kind="metric")
    fraud_drift = alert("income", "fraud")
    relay.fire(volume, INCOME, dataset, output, metric, fraud_drift)
    churn, fraud = relay.tick()
    assert subjects(churn.firing) == ["auc", "rows"]
    assert subjects(fraud.firing) == ["income"]


def test_empty_inhibit_rules_turn_the_defaults_off() -> None:
    relay = Relay(routing({"group_wait": 0}, inhibit_rules=[]))
    relay.fire(alert("income", severity="critical"), INCOME)
    [notice] = relay.tick()
    assert sorted(a.severity for a in notice.firing) == ["critical", "warning"]


# --- routes -----------------------------------------------------------------------------


def test_continue_routes_notify_each_receiver() -> None:
    relay = Relay(
        routing(
            {
                "group_wait": 0,
                "routes": [
                    {"receiver": "pager", "matchers": ['severity="critical"'], "continue": True},
                    {"receiver": "team", "group_wait": "1m"},
                ],
            },
            receivers=[{"name": "team"}, {"name": "pager"}],
        )
    )
    critical = alert("income", severity="critical")
    relay.fire(critical, AGE)
    [pager] = relay.tick()
    assert pager.group.receiver == "pager" and pager.firing == (critical,)
    [(when, team)] = relay.run_to(60)
    assert when == 60 and team.group.receiver == "team"
    assert subjects(team.firing) == ["age", "income"]
    assert pager.group.group_key != team.group.group_key


def test_without_continue_the_first_matching_route_takes_the_alert() -> None:
    relay = Relay(
        routing(
            {
                "group_wait": 0,
                "routes": [
                    {"receiver": "pager", "matchers": ['severity="critical"']},
                    {"receiver": "team"},
                ],
            },
            receivers=[{"name": "team"}, {"name": "pager"}],
        )
    )
    relay.fire(alert("income", severity="critical"), AGE)
    notices = relay.tick()
    assert sorted((n.group.receiver, subjects(n.firing)) for n in notices) == [
        ("pager", ["income"]),
        ("team", ["age"]),
    ]


# --- a property over random timelines ---------------------------------------------------

UNIVERSE = tuple(alert(s, m) for m in ("churn", "fraud") for s in ("a", "b", "c"))
SILENCES = st.builds(
    lambda matchers, start, length: silence(*matchers, start=start, end=start + length),
    st.sampled_from([('subject="a"',), ('model="fraud"',), ('model="churn"', 'subject="c"')]),
    st.sampled_from([0, 60, 300, 900, 3600]),
    st.sampled_from([300, 1800, 7200]),
)


@settings(max_examples=examples(150), deadline=None)
@given(
    group_wait=st.sampled_from([0, 30, 120]),
    group_interval=st.sampled_from([30, 60, 300]),
    repeat_interval=st.sampled_from([60, 600, 3600]),
    send_resolved=st.booleans(),
    silenced=st.lists(SILENCES, max_size=3),
    steps=st.lists(
        st.tuples(
            st.frozensets(st.integers(0, len(UNIVERSE) - 1), max_size=3),
            st.sampled_from([0, 1, 10, 29, 30, 59, 60, 120, 299, 300, 900, 3600]),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_relay_timelines_keep_their_promises(
    group_wait: int,
    group_interval: int,
    repeat_interval: int,
    send_resolved: bool,
    silenced: list[SilenceRecord],
    steps: list[tuple[frozenset[int], int]],
) -> None:
    """(a) after a group's first notice (which waits group_wait), its next ones are spaced
    by at least min(group_interval, repeat_interval): group_interval before a change or a
    resolved notice, repeat_interval before a repeat; (b) an alert told firing is told
    resolved at most once per episode, and is told resolved unless it fires again first or
    leaves a notice while muted, after group_interval even when the rest of its group is
    muted; (c) nothing due is held back."""
    relay = Relay(
        routing(
            {
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
                "routes": [
                    {"receiver": "pager", "matchers": ['subject="a"'], "continue": True},
                    {"receiver": "team"},
                ],
            },
            receivers=[
                {"name": "team", "send_resolved": send_resolved},
                {"name": "pager", "send_resolved": send_resolved},
            ],
            inhibit_rules=[],
        )
    )
    relay.silences = list(silenced)
    wait, change, repeat = (
        timedelta(seconds=s) for s in (group_wait, group_interval, repeat_interval)
    )
    last: dict[GroupId, datetime] = {}  # each group's last notice, since it was formed
    told: dict[GroupId, set[str]] = {}  # alerts told firing and not yet told resolved

    def round_(seconds: float) -> None:
        already = len(relay.forgotten)
        notices = relay.tick(seconds)
        now = relay.now
        firing = set(relay.firing)
        muted_now = {
            a.fingerprint
            for a in relay.firing.values()
            if any(s.active(now) and all(_matches(m, a) for m in s.matchers) for s in silenced)
        }
        for notice in notices:
            gid = (notice.group.receiver, notice.group.group_key)
            shown = {a.fingerprint for a in notice.firing}
            gone = {a.fingerprint for a in notice.resolved}
            before = told.get(gid, set())
            # (a) spacing
            if gid in last:
                assert notice.group.seq > 1
                assert now - last[gid] >= (repeat if notice.repeat else change), (gid, now)
            else:
                assert notice.group.seq == 1 and notice.status == "firing"
                assert now >= notice.group.first_seen_at + wait
            last[gid] = now
            # what a notice says is true now
            assert shown <= firing - muted_now
            assert not gone & firing
            # (b) resolved once: only what was told firing and not yet told resolved ...
            assert gone <= before, (gone, before)
            # ... and nothing told drops out of the story unless it is muted (or the
            # receiver does not want to hear about resolved alerts at all)
            if send_resolved:
                assert before - shown - gone <= muted_now
            else:
                assert not gone
            if notice.status == "resolved":
                assert send_resolved and not shown and gone
            else:
                assert shown, "a firing notice lists what fires"
                assert notice.repeat == (shown == before and not gone)
            told[gid] = shown
        for _, gid in relay.forgotten[already:]:
            if send_resolved:
                assert not told.get(gid), f"{gid} forgotten before it was told resolved"
            last.pop(gid, None)
            told.pop(gid, None)
        # (c) what is due was sent: every group with alerts to tell is known and on time
        present: dict[GroupId, set[str]] = {gid: set() for gid in relay.groups}
        active: dict[GroupId, set[str]] = {}
        for a in relay.firing.values():
            for route in relay.routing.routes_for(a.labels):
                gid = (route.receiver, route.group_key(a.labels))
                present.setdefault(gid, set()).add(a.fingerprint)
                if a.fingerprint not in muted_now:
                    active.setdefault(gid, set()).add(a.fingerprint)
        for gid, here in present.items():
            state = relay.groups.get(gid)
            if gid not in active:  # nothing to tell firing: at most a resolution
                if state is not None and state.last_sent_at is not None:
                    due = not here or (send_resolved and told[gid] - here)
                    assert not due or now < last[gid] + change, f"{gid}: resolution held back"
                continue
            assert state is not None, f"{gid} has alerts to tell but no state"
            if state.last_sent_at is None:
                assert now < state.first_seen_at + wait, f"{gid}: first notice held back"
                continue
            assert state.last_sent_at == last[gid] and set(state.notified) == told[gid]
            if active[gid] != told[gid]:
                assert now < last[gid] + change, f"{gid}: change held back"
            else:
                assert now < last[gid] + repeat, f"{gid}: repeat held back"

    for flips, seconds in steps:  # each step starts or stops a few alerts, then a round
        for i in flips:
            if UNIVERSE[i].fingerprint in relay.firing:
                relay.clear(UNIVERSE[i])
            else:
                relay.fire(UNIVERSE[i])
        round_(seconds)
    relay.firing = {}  # everything clears: every group says so and is forgotten
    round_(group_interval)
    assert relay.groups == {}
    assert told == {}


def _matches(matcher: str, a: AlertRecord) -> bool:
    name, value = matcher.split("=", 1)
    return a.labels.get(name) == value.strip('"')
