"""Specification of notifications (`services.alerts.notify.Notifier`): Alertmanager semantics.

Time is passed in; each test is a sequence of `receive(alert, t)` and `due(t)` calls and states
what must (not) be sent when. Default timings in these tests: group_wait 30 s, group_interval
5 min, repeat_interval 4 h.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.alert import Alert, AlertEvidence, AlertKind, AlertStatus, Severity
from schemas.cases import Silence
from services.alerts.cases import CaseStore
from services.alerts.flows import alert_id, fingerprint
from services.alerts.notify import Notification, Notifier
from services.alerts.rules import Routing, load_rules, parse
from services.alerts.state.durable import case_alerts

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def routing(extra: str = "") -> Routing:
    text = textwrap.dedent("""\
        version: 1
        rules: []
        routing:
          receivers: [webhook-ops, slack-ops, email-cx]
          default:
            receiver: webhook-ops
            group_by: [rule, touchpoint, unit]
            group_wait: 30s
            group_interval: 5m
            repeat_interval: 4h
        """) + textwrap.indent(textwrap.dedent(extra), "  ")
    return parse(text).routing


def make(rule: str = "nps-drop", *, kind: AlertKind = AlertKind.aggregate_drop, at: datetime = T0,
         touchpoint: str = "store", unit: str = "u1", customer: str | None = None,
         severity: Severity = Severity.warning) -> Alert:
    labels = {"touchpoint": touchpoint, "unit": unit, "rule": rule, "kind": kind.value,
              "severity": severity.value}
    ident = {"touchpoint": touchpoint, "unit": unit}
    if customer is not None:
        labels["customer_id"] = customer
        ident = {"customer_id": customer}
    fp = fingerprint(rule, ident)
    return Alert(alert_id=alert_id(fp, at), fingerprint=fp, kind=kind, rule=rule,
                 detector_version="test", severity=severity, status=AlertStatus.firing,
                 labels=labels, summary="test", evidence=AlertEvidence(metric="nps"), starts_at=at)


def resolve(a: Alert, at: datetime) -> Alert:
    return a.model_copy(update={"status": AlertStatus.resolved, "ends_at": at})


def ids(n: Notification) -> list[tuple[str, str]]:
    return [(a.labels.get("customer_id") or a.labels["unit"], a.status.value) for a in n.alerts]


def drain(notifier: Notifier, start: datetime, end: datetime, step: timedelta = S) -> list[tuple[datetime, Notification]]:
    """Call due() every `step` from start to end (inclusive); what was sent, when."""
    out = []
    t = start
    while t <= end:
        out += [(t, n) for n in notifier.due(t)]
        t += step
    return out


# ============================================================================ grouping & timing


class TestGroupingAndTiming:
    def test_group_wait_collects_related_alerts_into_the_first_notification(self) -> None:
        n = Notifier(routing())
        a, b = make(unit="u1"), make(unit="u1", rule="csat-drop")
        c = make(unit="u1", rule="nps-drop", touchpoint="web")
        n.receive(a, T0)
        n.receive(c, T0 + 5 * S)
        sent = drain(n, T0, T0 + 29 * S)
        assert sent == []
        n.receive(make(unit="u1", at=T0), T0 + 10 * S)  # the same alert again: nothing changes
        sent = drain(n, T0 + 30 * S, T0 + 40 * S)
        assert [(t - T0, x.group_labels) for t, x in sent] == [
            (30 * S, {"rule": "nps-drop", "touchpoint": "store", "unit": "u1"}),
            (35 * S, {"rule": "nps-drop", "touchpoint": "web", "unit": "u1"}),
        ]
        first = sent[0][1]
        assert first.receiver == "webhook-ops" and first.status is AlertStatus.firing
        assert first.alerts == (a,) and first.sequence == 0
        del b

    def test_changes_to_a_notified_group_are_sent_at_most_every_group_interval(self) -> None:
        n = Notifier(routing("""\
            default: {receiver: webhook-ops, group_by: [rule], group_wait: 30s,
                      group_interval: 5m, repeat_interval: 4h}
            """).model_copy(update={"receivers": ["webhook-ops"]}))
        n.receive(make(unit="u1"), T0)
        [(t1, first)] = drain(n, T0, T0 + M)
        assert t1 == T0 + 30 * S and ids(first) == [("u1", "firing")]
        n.receive(make(unit="u2", at=T0 + 40 * S), T0 + 40 * S)
        n.receive(make(unit="u3", at=T0 + 2 * M), T0 + 2 * M)
        sent = drain(n, T0 + M, T0 + 10 * M)
        assert [(t - T0) for t, _ in sent] == [30 * S + 5 * M]  # one batch, one interval later
        assert ids(sent[0][1]) == [("u1", "firing"), ("u2", "firing"), ("u3", "firing")]
        assert sent[0][1].sequence == 1

    def test_an_unchanged_firing_group_is_repeated_after_repeat_interval(self) -> None:
        n = Notifier(routing())
        n.receive(make(), T0)
        sent = drain(n, T0, T0 + 9 * H, step=M // 2)
        times = [t - T0 for t, _ in sent]
        # first at group_wait; repeats at the first look (every 5 min) >= 4 h after the last send
        assert times == [30 * S, 30 * S + 4 * H, 30 * S + 8 * H]
        keys = [x.idempotency_key for _, x in sent]
        assert len(set(keys)) == 3  # a repeat is a new notification, not a retry

    def test_idempotency_keys_are_deterministic(self) -> None:
        def replay() -> list[str]:
            n = Notifier(routing())
            n.receive(make(), T0)
            n.receive(make(unit="u2"), T0)
            keys = [x.idempotency_key for _, x in drain(n, T0, T0 + M)]
            n.receive(resolve(make(), T0 + M), T0 + M)
            return keys + [x.idempotency_key for _, x in drain(n, T0 + M + S, T0 + 20 * M)]
        assert replay() == replay() and len(set(replay())) == len(replay()) == 3


# ============================================================================ resolved


class TestResolved:
    def test_resolved_is_sent_once_within_group_interval_and_the_group_is_forgotten(self) -> None:
        n = Notifier(routing())
        a = make()
        n.receive(a, T0)
        [(_, first)] = drain(n, T0, T0 + M)
        n.receive(resolve(a, T0 + 2 * M), T0 + 2 * M)
        n.receive(resolve(a, T0 + 2 * M), T0 + 3 * M)  # duplicate resolution
        sent = drain(n, T0 + M, T0 + 2 * H)
        [(t, res)] = sent
        assert T0 + 2 * M <= t <= T0 + 2 * M + 5 * M  # within group_interval
        assert res.status is AlertStatus.resolved and ids(res) == [("u1", "resolved")]
        assert res.group_key == first.group_key and res.idempotency_key != first.idempotency_key
        assert n.groups() == {}

    def test_no_orphan_resolved_for_a_group_that_was_never_notified(self) -> None:
        n = Notifier(routing())
        a = make()
        n.receive(a, T0)
        n.receive(resolve(a, T0 + 10 * S), T0 + 10 * S)
        assert drain(n, T0, T0 + H, step=10 * S) == []
        n.receive(resolve(make(unit="never-seen"), T0), T0)
        assert drain(n, T0 + H, T0 + 2 * H, step=M) == []

    def test_partial_resolution_then_all_resolved(self) -> None:
        n = Notifier(routing("""\
            default: {receiver: webhook-ops, group_by: [rule]}
            """).model_copy(update={"receivers": ["webhook-ops"]}))
        a, b = make(unit="u1"), make(unit="u2")
        n.receive(a, T0)
        n.receive(b, T0)
        [(_, first)] = drain(n, T0, T0 + M)
        assert ids(first) == [("u1", "firing"), ("u2", "firing")]
        n.receive(resolve(a, T0 + 2 * M), T0 + 2 * M)
        [(_, second)] = drain(n, T0 + M, T0 + 10 * M)
        assert second.status is AlertStatus.firing  # b still fires
        assert ids(second) == [("u2", "firing"), ("u1", "resolved")]
        n.receive(resolve(b, T0 + 12 * M), T0 + 12 * M)
        [(_, third)] = drain(n, T0 + 10 * M, T0 + H)
        assert third.status is AlertStatus.resolved and ids(third) == [("u2", "resolved")]
        assert drain(n, T0 + H, T0 + 6 * H, step=M) == []

    def test_a_group_that_fires_again_after_resolving_starts_fresh(self) -> None:
        n = Notifier(routing())
        a = make()
        n.receive(a, T0)
        [(_, first)] = drain(n, T0, T0 + M)
        n.receive(resolve(a, T0 + 2 * M), T0 + 2 * M)
        [(_, res)] = drain(n, T0 + M, T0 + 10 * M)
        again = make(at=T0 + 20 * M)
        assert again.fingerprint == a.fingerprint and again.alert_id != a.alert_id
        n.receive(again, T0 + 20 * M)
        sent = drain(n, T0 + 20 * M, T0 + 30 * M)
        [(t, fresh)] = sent
        assert t == T0 + 20 * M + 30 * S  # group_wait again
        assert fresh.sequence == 0 and fresh.alerts == (again,)
        assert fresh.idempotency_key not in {first.idempotency_key, res.idempotency_key}

    def test_a_late_firing_after_the_resolution_changes_nothing(self) -> None:
        n = Notifier(routing())
        a = make()
        n.receive(a, T0)
        drain(n, T0, T0 + M)
        n.receive(resolve(a, T0 + 2 * M), T0 + 2 * M)
        n.receive(a, T0 + 3 * M)  # redelivered old state
        [(_, res)] = drain(n, T0 + M, T0 + H)
        assert res.status is AlertStatus.resolved
        n.receive(a, T0 + 2 * H)  # ... also long after the group is gone
        assert drain(n, T0 + 2 * H, T0 + 3 * H, step=M) == []


# ============================================================================ silences


def silence(sid: str, matchers: dict[str, str], start: datetime, end: datetime) -> Silence:
    return Silence(silence_id=sid, matchers=matchers, starts_at=start, ends_at=end, created_by="ops")


class TestSilences:
    def test_a_silenced_alert_is_not_notified_until_the_silence_expires(self) -> None:
        n = Notifier(routing())
        n.add_silence(silence("s1", {"unit": "u1"}, T0, T0 + H))
        n.receive(make(unit="u1"), T0)
        n.receive(make(unit="u2"), T0)
        sent = drain(n, T0, T0 + H - S, step=10 * S)
        assert [ids(x) for _, x in sent] == [[("u2", "firing")]]
        assert [s.silence_id for s in n.silences()] == ["s1"]
        sent = drain(n, T0 + H, T0 + H + 10 * M, step=10 * S)
        [(t, x)] = sent
        assert T0 + H <= t <= T0 + H + 5 * M and ids(x) == [("u1", "firing")]
        assert n.silences() == []  # expired

    def test_removing_a_silence_unmutes_at_the_next_look(self) -> None:
        n = Notifier(routing())
        n.add_silence(silence("s1", {"rule": "nps-drop"}, T0, T0 + 24 * H))
        n.receive(make(), T0)
        assert drain(n, T0, T0 + 10 * M, step=10 * S) == []
        assert n.remove_silence("s1") and not n.remove_silence("s1")
        [(t, x)] = drain(n, T0 + 10 * M, T0 + 20 * M, step=10 * S)
        assert t <= T0 + 15 * M and x.alerts[0].labels["unit"] == "u1"

    def test_a_future_silence_does_not_mute_yet(self) -> None:
        n = Notifier(routing())
        n.add_silence(silence("later", {"unit": "u1"}, T0 + H, T0 + 2 * H))
        n.receive(make(), T0)
        assert len(drain(n, T0, T0 + M)) == 1

    def test_silencing_a_notified_alert_suppresses_repeats_but_not_its_resolution(self) -> None:
        n = Notifier(routing())
        a = make()
        n.receive(a, T0)
        assert len(drain(n, T0, T0 + M)) == 1
        n.add_silence(silence("s1", {"unit": "u1"}, T0 + M, T0 + 24 * H))
        assert drain(n, T0 + M, T0 + 9 * H, step=M) == []  # no repeats while silenced
        n.receive(resolve(a, T0 + 9 * H), T0 + 9 * H)
        [(_, res)] = drain(n, T0 + 9 * H, T0 + 10 * H, step=M)
        assert res.status is AlertStatus.resolved  # the receiver can close what it opened


# ============================================================================ inhibition


class TestInhibition:
    def test_a_units_aggregate_drop_suppresses_churn_alerts_of_the_same_touchpoint_and_unit(self) -> None:
        n = Notifier(load_rules().routing)  # the default rules: source drop, target churn
        drop = make("nps-drop", unit="u1")
        n.receive(drop, T0)
        n.receive(make("churn-risk", kind=AlertKind.churn_risk, unit="u1", customer="c-1"), T0)
        n.receive(make("churn-risk", kind=AlertKind.churn_risk, unit="u2", customer="c-2"), T0)
        sent = drain(n, T0, T0 + 5 * M)
        notified = sorted(a.labels.get("customer_id", a.labels["rule"]) for _, x in sent for a in x.alerts)
        assert notified == ["c-2", "nps-drop"]  # c-1 is inhibited
        # the drop resolves: the churn alert still fires and is notified now
        n.receive(resolve(drop, T0 + 10 * M), T0 + 10 * M)
        sent = drain(n, T0 + 10 * M, T0 + 20 * M)
        got = sorted((ids(x)[0], x.status.value) for _, x in sent)
        assert got == [(("c-1", "firing"), "firing"), (("u1", "resolved"), "resolved")]

    def test_an_alert_never_inhibits_itself(self) -> None:
        r = routing("""\
            inhibit:
              - source: {kind: aggregate_drop}
                target: {kind: aggregate_drop}
                equal: [touchpoint]
            """)
        n = Notifier(r)
        n.receive(make("nps-drop", unit="u1"), T0)
        assert len(drain(n, T0, T0 + M)) == 1
        # but a second drop of the same touchpoint is inhibited by the first
        n.receive(make("csat-drop", unit="u9"), T0 + 2 * M)
        assert drain(n, T0 + 2 * M, T0 + 20 * M) == []


# ============================================================================ routing


class TestRouting:
    ROUTES = """\
        routes:
          - name: churn-cx
            match: {kind: churn_risk}
            receiver: email-cx
            group_by: [customer_id]
            group_wait: 0s
            continue: true
          - name: critical
            match: {severity: critical}
            receiver: slack-ops
            group_wait: 10s
        """

    def test_first_match_wins_continue_goes_on_and_the_default_takes_the_rest(self) -> None:
        n = Notifier(routing(self.ROUTES))
        n.receive(make("churn-risk", kind=AlertKind.churn_risk, customer="c-1", severity=Severity.critical), T0)
        n.receive(make("nps-drop"), T0)
        sent = drain(n, T0, T0 + M)
        got = sorted((t - T0, x.receiver, x.group_key) for t, x in sent)
        assert got == [
            (0 * S, "email-cx", 'email-cx/churn-cx:{customer_id="c-1"}'),
            (10 * S, "slack-ops", 'slack-ops/critical:{rule="churn-risk",touchpoint="store",unit="u1"}'),
            (30 * S, "webhook-ops", 'webhook-ops/default:{rule="nps-drop",touchpoint="store",unit="u1"}'),
        ]

    def test_update_routing_keeps_groups_and_applies_new_timings(self) -> None:
        n = Notifier(routing())
        n.receive(make(), T0)
        assert len(drain(n, T0, T0 + M)) == 1
        n.update_routing(routing("""\
            default: {receiver: webhook-ops, group_by: [rule, touchpoint, unit],
                      group_interval: 1m, repeat_interval: 10m}
            """).model_copy(update={"receivers": ["webhook-ops"]}))
        sent = drain(n, T0 + M, T0 + 30 * M, step=10 * S)
        assert sent and all(x.sequence > 0 for _, x in sent)  # same group, continued
        assert (sent[0][0] - T0) <= 16 * M


# ============================================================================ digests


class TestDigests:
    DIGEST = """\
        digests:
          - name: cx-daily
            receiver: email-cx
            at: "08:00"
            timezone: Europe/Berlin
            match: {kind: churn_risk}
        """

    def test_a_daily_digest_of_the_past_days_alerts_at_the_local_time(self) -> None:
        n = Notifier(routing(self.DIGEST))
        start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 07:00 in Berlin (CET)
        n.due(start)
        c1 = make("churn-risk", kind=AlertKind.churn_risk, customer="c-1", at=start)
        n.receive(c1, start)
        n.receive(make("nps-drop", at=start), start)  # not matched by the digest
        sent = [x for _, x in drain(n, start, start + 2 * H, step=M) if x.digest]
        [digest] = sent
        assert digest.receiver == "email-cx" and digest.alerts == (c1,)
        assert digest.group_key == "digest/cx-daily:2026-03-02"
        # next day: c-1 resolved during the day, still in the digest; then an empty day
        n.receive(resolve(c1, start + 5 * H), start + 5 * H)
        n.due(start + 5 * H)
        [d2] = [x for x in n.due(datetime(2026, 3, 3, 7, 0, tzinfo=UTC)) if x.digest]
        assert d2.status is AlertStatus.resolved and d2.alerts[0].status is AlertStatus.resolved
        assert [x for x in n.due(datetime(2026, 3, 4, 7, 0, tzinfo=UTC)) if x.digest] == []

    def test_a_new_notifier_digests_the_day_it_did_not_see_from_the_cases(self) -> None:
        """After a restart (or a hand-over) the notifier takes the last two days' alerts from the
        cases: the digest covers the whole day, the resolved one included, and nothing is
        notified for them otherwise."""
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # the restart; the digest is due at 07:00 UTC
        c1 = make("churn-risk", kind=AlertKind.churn_risk, customer="c-1", at=start - 20 * H)
        c2 = make("churn-risk", kind=AlertKind.churn_risk, customer="c-2", at=start - 10 * H)
        store = CaseStore()
        for change, at in ((c1, c1.starts_at), (c2, c2.starts_at), (resolve(c2, start - 2 * H), start - 2 * H)):
            for event in store.on_alert(change, at, lambda _alert: 3600.0):
                store.apply(event)
        old = make("churn-risk", kind=AlertKind.churn_risk, customer="c-3", at=start - 80 * H)
        before_restart = [*case_alerts(store), resolve(old, start - 70 * H)]
        n = Notifier(routing(self.DIGEST))
        assert n.remember_history(before_restart, start) == 2  # c-3 ended three days ago
        assert n.due(start) == []  # nothing is notified for the remembered alerts
        [digest] = [x for x in n.due(datetime(2026, 3, 3, 7, 0, tzinfo=UTC)) if x.digest]
        assert [(a.labels["customer_id"], a.status) for a in digest.alerts] == [
            ("c-1", AlertStatus.firing), ("c-2", AlertStatus.resolved)]

    def test_a_digest_that_fell_due_while_no_notifier_ran_is_sent_late_once(self) -> None:
        """The digest time last handled is reported; a new notifier given it sends the digest
        that came due while nobody notified (at its first look), once; without it the digest
        would be skipped and the next one is a day away."""
        start = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 07:00 in Berlin, the digest is at 07:00 UTC
        before = Notifier(routing(self.DIGEST))
        before.due(start)
        c1 = make("churn-risk", kind=AlertKind.churn_risk, customer="c-1", at=start)
        before.receive(c1, start)
        [sent] = [x for _, x in drain(before, start, start + 2 * H, step=M) if x.digest]
        marks = before.take_digest_marks()
        assert marks == {"cx-daily": datetime(2026, 3, 2, 7, 0, tzinfo=UTC)}
        assert before.take_digest_marks() == {}  # reported once

        restart = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # down from 08:00 yesterday: today's 07:00 passed
        after, forgetful = Notifier(routing(self.DIGEST)), Notifier(routing(self.DIGEST))
        for n in (after, forgetful):
            n.remember_history([c1], restart)
        assert after.restore_digests(marks) == 1

        [late] = [x for x in after.due(restart) if x.digest]
        assert late.group_key == "digest/cx-daily:2026-03-03" and late.alerts == (c1,)
        assert late.idempotency_key != sent.idempotency_key
        assert [x for x in after.due(restart + M) if x.digest] == []
        assert [x for _, x in drain(forgetful, restart, restart + 12 * H, step=M) if x.digest] == []

    def test_digest_marks_of_digests_no_longer_configured_are_ignored(self) -> None:
        n = Notifier(routing(self.DIGEST))
        assert n.restore_digests({"gone": datetime(2026, 3, 2, 7, 0, tzinfo=UTC)}) == 0

    def test_digest_follows_daylight_saving_time(self) -> None:
        n = Notifier(routing(self.DIGEST))
        before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # DST starts on 29 March in Berlin
        n.due(before)
        n.receive(make("churn-risk", kind=AlertKind.churn_risk, customer="c-1", at=before), before)
        sent = [(t, x) for t, x in drain(n, before, before + 48 * H, step=M) if x.digest]
        assert [t for t, _ in sent] == [datetime(2026, 3, 29, 6, 0, tzinfo=UTC),  # 08:00 CEST
                                        datetime(2026, 3, 30, 6, 0, tzinfo=UTC)]


# ============================================================================ properties

EVENTS = st.lists(st.tuples(st.sampled_from(["fire", "resolve", "wait"]), st.integers(0, 3),
                            st.integers(1, 900)), max_size=40)


class TestProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(EVENTS, st.booleans())
    def test_every_notified_alert_is_resolved_exactly_once_and_nothing_else(self, events, silenced) -> None:  # type: ignore[no-untyped-def]
        """Any sequence of firings/resolutions (with due() every 10 s): no empty notification,
        at most one notification per group_interval within a group's life, no resolved for an
        alert never notified firing, never two resolved for one alert, and after everything
        resolved each alert notified firing was notified resolved."""
        n = Notifier(routing("""\
            default: {receiver: webhook-ops, group_by: [rule], group_wait: 30s,
                      group_interval: 2m, repeat_interval: 20m}
            """).model_copy(update={"receivers": ["webhook-ops"]}))
        if silenced:
            n.add_silence(silence("s", {"unit": "u2"}, T0, T0 + H))
        t = T0
        current: dict[int, Alert] = {}
        sent: list[tuple[datetime, Notification]] = []
        for op, unit, dt in events:
            if op == "fire" and unit not in current:
                current[unit] = make(unit=f"u{unit}", at=t)
                n.receive(current[unit], t)
            elif op == "resolve" and unit in current:
                n.receive(resolve(current.pop(unit), t), t)
            sent += drain(n, t, t + dt * S, step=10 * S)
            t += dt * S + 10 * S
        for unit in list(current):
            n.receive(resolve(current.pop(unit), t), t)
        sent += drain(n, t, t + 3 * H, step=10 * S)
        told_firing: set[str] = set()
        told_resolved: set[str] = set()
        last_sent: datetime | None = None
        for at, x in sent:
            assert x.alerts
            assert (x.status is AlertStatus.firing) == any(a.status is AlertStatus.firing for a in x.alerts)
            if last_sent is not None:
                assert at - last_sent >= 2 * M  # at most one notification per group_interval
            # an all-resolved notification ends the group; a later firing starts a new one
            last_sent = at if x.status is AlertStatus.firing else None
            for a in x.alerts:
                if a.status is AlertStatus.firing:
                    assert a.alert_id not in told_resolved
                    told_firing.add(a.alert_id)
                else:
                    assert a.alert_id in told_firing and a.alert_id not in told_resolved
                    told_resolved.add(a.alert_id)
        assert told_resolved == told_firing
        assert len({x.idempotency_key for _, x in sent}) == len(sent)
        assert n.groups() == {}
