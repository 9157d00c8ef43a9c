"""What the alerts service keeps across a restart, as pure parts: notification groups (what
each receiver was told), state records and their replay, firing alerts handed back to the
evaluator, and SLA escalations routed by the rules."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import AlertStatus, Severity
from schemas.cases import CaseAction, CaseEvent, Silence
from services.alerts.cases import CaseStore
from services.alerts.delivery.outbox import PARKED, PENDING, Delivery
from services.alerts.flows import AlertEvaluator
from services.alerts.notify import Notifier
from services.alerts.notify.escalation import escalation_notification
from services.alerts.rules import RulesError, load_rules, parse
from services.alerts.state.durable import StateWriter, apply_remote
from services.alerts.state.log import latest
from services.alerts.state.parked import ParkedView
from services.alerts.state.records import (
    DeliveryRecord,
    DigestRecord,
    SilenceRecord,
    decode,
    encode,
)
from tests.alerts.test_api import scored_event
from tests.alerts.test_notify import T0, H, M, S, make, resolve, routing


def restarted(before: Notifier) -> Notifier:
    """A new Notifier given the groups the old one reported as changed (what the state topic holds)."""
    groups, _ = before.take_changes()
    after = Notifier(before._routing)
    after.restore([g for g in groups.values() if g is not None])
    return after


def test_a_restored_group_resolves_once_and_does_not_renotify_the_firing_alert() -> None:
    before = Notifier(routing())
    alert = make()
    before.receive(alert, T0)
    [first] = before.due(T0 + 30 * S)
    after = restarted(before)

    after.receive(alert, T0 + M)  # the same alert again (e.g. re-read after the restart)
    assert after.due(T0 + 6 * M) == []
    after.receive(resolve(alert, T0 + 7 * M), T0 + 7 * M)
    [resolved] = after.due(T0 + 11 * M)
    assert resolved.status is AlertStatus.resolved and [a.alert_id for a in resolved.alerts] == [alert.alert_id]
    assert resolved.group_key == first.group_key and resolved.sequence == first.sequence + 1
    assert resolved.idempotency_key != first.idempotency_key
    assert after.due(T0 + 20 * M) == [] and after.groups() == {}


def test_a_restored_group_repeats_after_repeat_interval_from_the_last_send_before_the_restart() -> None:
    before = Notifier(routing())
    before.receive(make(), T0)
    [first] = before.due(T0 + 30 * S)
    after = restarted(before)
    assert after.due(T0 + 4 * H) == []
    [repeat] = after.due(T0 + 4 * H + 5 * M)  # the next look after repeat_interval
    assert repeat.repeat and repeat.sequence == 1 and repeat.group_key == first.group_key


def test_a_group_whose_route_is_gone_after_the_restart_is_dropped() -> None:
    before = Notifier(routing("routes: [{name: ops, match: {unit: u1}, receiver: slack-ops}]\n"))
    before.receive(make(), T0)
    assert len(before.due(T0 + 30 * S)) == 1
    groups, _ = before.take_changes()
    after = Notifier(routing())
    assert after.restore([g for g in groups.values() if g is not None]) == []


def test_an_ended_group_and_an_expired_silence_are_reported_as_removed() -> None:
    notifier = Notifier(routing())
    notifier.add_silence(Silence(silence_id="s1", matchers={"unit": "u9"}, starts_at=T0, ends_at=T0 + M,
                                 created_by="ana"))
    alert = make()
    notifier.receive(alert, T0)
    notifier.due(T0 + 30 * S)
    notifier.take_changes()
    notifier.receive(resolve(alert, T0 + M), T0 + M)
    notifier.due(T0 + 6 * M)
    groups, expired = notifier.take_changes()
    assert list(groups.values()) == [None] and expired == ["s1"]


def test_every_worker_lists_what_the_notifier_parked_until_it_is_replayed_or_delivered() -> None:
    notifier = Notifier(routing())
    notifier.receive(make(), T0)
    [notification] = notifier.due(T0 + 30 * S)
    delivery = Delivery("d1", "webhook-ops", "webhook-ops", notification, T0, state=PARKED, attempts=1)
    runtime = SimpleNamespace(notifier=Notifier(routing()), parked_view=ParkedView())
    apply_remote(runtime, "delivery/d1", DeliveryRecord.of(delivery, "alerts-2"), T0)
    assert [d.to_json() for d in runtime.parked_view.deliveries()] == [delivery.to_json()]
    assert runtime.parked_view.parked_by("d1") == "alerts-2"
    delivery.state = PENDING  # replayed on the notifier
    apply_remote(runtime, "delivery/d1", DeliveryRecord.of(delivery, "alerts-2"), T0 + M)
    assert runtime.parked_view.deliveries() == [] and runtime.parked_view.parked_by("d1") is None
    delivery.state = PARKED
    apply_remote(runtime, "delivery/d1", DeliveryRecord.of(delivery, "alerts-2"), T0 + 2 * M)
    apply_remote(runtime, "delivery/d1", None, T0 + 3 * M)  # delivered: tombstoned
    assert runtime.parked_view.deliveries() == []


def test_delivery_records_round_trip_with_their_notification() -> None:
    notifier = Notifier(routing())
    notifier.receive(make(), T0)
    [notification] = notifier.due(T0 + 30 * S)
    delivery = Delivery("d1", "webhook-ops", "webhook-ops", notification, T0, state=PARKED, attempts=3,
                        last_error="HTTP 400: no", history=[{"event": "parked"}])
    back = decode(encode(DeliveryRecord.of(delivery, "alerts-1")))
    assert isinstance(back, DeliveryRecord) and back.worker_id == "alerts-1"
    restored = back.delivery()
    assert restored.to_json() == delivery.to_json()
    assert restored.notification == notification


def test_a_handled_digest_is_written_as_a_record_and_restores_the_next_digest_time() -> None:
    rules = routing("""\
        digests:
          - {name: daily, receiver: webhook-ops, at: "08:00", timezone: UTC, match: {}}
        """)
    puts: list[tuple[str, bytes | None]] = []
    writer = StateWriter(SimpleNamespace(put=lambda key, record: puts.append((key, encode(record)))),  # type: ignore[arg-type]
                         "alerts-1")
    first = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # the first digest after T0
    before = Notifier(rules)
    before.due(T0)
    before.receive(make(), T0)
    assert [x.group_key for x in before.due(first) if x.digest] == ["digest/daily:2026-03-03"]
    writer.notifier(before)

    [(key, value)] = [(k, v) for k, v in puts if k.startswith("digest/")]
    record = decode(value)
    assert key == "digest/daily" and isinstance(record, DigestRecord)
    assert record.handled == first
    after = Notifier(rules)
    after.restore_digests({record.name: record.handled})
    after.receive(make(), first + H)
    next_day = first + 24 * H
    assert [x for x in after.due(next_day - M) if x.digest] == []
    assert [x.group_key for x in after.due(next_day) if x.digest] == ["digest/daily:2026-03-04"]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans()), max_size=30))
def test_a_replay_keeps_the_last_record_per_key_and_drops_tombstoned_keys(writes: list[tuple[str, bool]]) -> None:
    def record(key: str, n: int) -> SilenceRecord:
        return SilenceRecord(silence=Silence(silence_id=f"{key}{n}", matchers={"unit": key}, starts_at=T0,
                                             ends_at=T0 + H, created_by="ana"))
    replay = [(key, record(key, i) if alive else None) for i, (key, alive) in enumerate(writes)]
    expected = {}
    for i, (key, alive) in enumerate(writes):
        expected[key] = f"{key}{i}" if alive else None
    got = [r.silence.silence_id for r in latest(replay) if isinstance(r, SilenceRecord)]
    assert sorted(got) == sorted(v for v in expected.values() if v is not None)


# --------------------------------------------------------------------------- evaluator


def test_a_restored_churn_alert_is_not_alerted_again_and_resolves_once() -> None:
    rules = load_rules(None)
    first = AlertEvaluator(rules)
    t0 = datetime.now(UTC)
    [alert] = first.on_scored(scored_event("c-7", "berlin", 1, churn=True, at=t0), t0)

    second = AlertEvaluator(rules)
    assert second.restore_firing([alert], t0 + M) == 1
    assert second.firing() == [alert]
    assert second.on_scored(scored_event("c-7", "berlin", 0, churn=True, at=t0 + 2 * M), t0 + 2 * M) == []
    [resolved] = second.on_scored(scored_event("c-7", "berlin", 10, at=t0 + 3 * M), t0 + 3 * M)
    assert resolved.alert_id == alert.alert_id and resolved.status is AlertStatus.resolved
    assert second.firing() == [] and second.on_tick(t0 + 30 * 24 * H) == []


def test_a_restored_churn_alert_resolves_after_quiet_for_counted_from_the_restart() -> None:
    rules = load_rules(None)
    t0 = datetime.now(UTC)
    [alert] = AlertEvaluator(rules).on_scored(scored_event("c-8", "berlin", 1, churn=True, at=t0), t0)
    second = AlertEvaluator(rules)
    second.restore_firing([alert], t0 + H)
    assert second.on_tick(t0 + 14 * 24 * H) == []  # quiet_for 14 d, counted from the restart
    [resolved] = second.on_tick(t0 + H + 14 * 24 * H)
    assert resolved.alert_id == alert.alert_id and resolved.evidence.details["resolved_reason"] == "quiet"


def test_alerts_of_unknown_rules_are_not_restored() -> None:
    rules = load_rules(None)
    t0 = datetime.now(UTC)
    [alert] = AlertEvaluator(rules).on_scored(scored_event("c-9", "berlin", 1, churn=True, at=t0), t0)
    assert AlertEvaluator(rules).restore_firing([alert.model_copy(update={"rule": "gone"})], t0) == 0


# --------------------------------------------------------------------------- escalation


ESCALATION_RULES = textwrap.dedent("""\
    version: 1
    rules: []
    routing:
      receivers: [webhook-ops, pager]
      default: {receiver: webhook-ops}
      escalation:
        - {match: {severity: critical}, receiver: pager}
        - {receiver: webhook-ops}
    """)


def overdue_case(severity: str) -> tuple[CaseStore, CaseEvent]:
    store = CaseStore()
    alert = make(severity=Severity(severity))
    for event in store.on_alert(alert, T0, lambda _s: 3600.0):
        store.apply(event)
    [event] = store.overdue(T0 + 2 * H)
    assert event.action is CaseAction.escalated
    return store, event


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "pager"), ("warning", "webhook-ops")])
def test_an_sla_breach_goes_to_the_first_matching_escalation_receiver(severity: str, receiver: str) -> None:
    store, event = overdue_case(severity)
    case = store.get(event.case_id)
    notification = escalation_notification(parse(ESCALATION_RULES).routing, case, event)
    assert notification is not None and notification.receiver == receiver
    assert notification.escalation is not None and notification.escalation["case_id"] == case.case_id
    assert notification.escalation["overdue_s"] == "3600.0"
    again = escalation_notification(parse(ESCALATION_RULES).routing, case, event)
    assert again is not None and again.idempotency_key == notification.idempotency_key


def test_without_an_escalation_entry_a_breach_is_only_recorded() -> None:
    store, event = overdue_case("warning")
    rules = parse(ESCALATION_RULES.split("  escalation:")[0])
    assert escalation_notification(rules.routing, store.get(event.case_id), event) is None


def test_an_escalation_to_an_undeclared_receiver_is_a_rules_error() -> None:
    with pytest.raises(RulesError, match="escalation"):
        parse(ESCALATION_RULES.replace("receiver: pager}", "receiver: nobody}"))


def test_silences_other_workers_write_are_followed_and_their_tombstones_lift_them() -> None:
    runtime = SimpleNamespace(notifier=Notifier(routing()), parked_view=ParkedView())
    silence = Silence(silence_id="s2", matchers={"unit": "u1"}, starts_at=T0, ends_at=T0 + H, created_by="ana")
    apply_remote(runtime, "silence/s2", SilenceRecord(silence=silence), T0)
    assert runtime.notifier.silenced({"unit": "u1"}, T0 + M) == silence
    apply_remote(runtime, "silence/s2", None, T0 + M)
    assert runtime.notifier.silences() == []
    apply_remote(runtime, "silence/s2", SilenceRecord(silence=silence), T0 + 2 * H)  # expired by now
    assert runtime.notifier.silences() == []
