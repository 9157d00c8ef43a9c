"""The case lifecycle: the pure fold (state machine, precise errors), SLA escalation, closed-loop
recovery; and, against the real broker and ClickHouse, the cases topic replay and the history."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from schemas.alert import AlertStatus, Severity
from schemas.cases import CaseAction, CaseCommand, CaseEvent, CaseState, Outcome, Silence
from schemas.feedback import FeedbackEvent
from schemas.scored import ScoredEvent
from services.alerts.cases import CaseStore, InvalidCommand, InvalidTransition, apply, decide, fold
from services.alerts.cases.log import HistoryWriter, replay_topic
from services.alerts.delivery.outbox import Outbox
from services.alerts.flows import AlertEvaluator
from services.alerts.metrics import AlertsMetrics
from services.alerts.notify import Notifier
from services.alerts.rules import load_rules
from services.alerts.service import AlertsRuntime
from services.alerts.settings import AlertsSettings
from services.common.settings import load_settings
from tests.alerts.test_delivery import make_alert

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
SETTINGS = AlertsSettings(sla_critical_s=3600, sla_warning_s=7200)


def bare_runtime(settings: AlertsSettings = SETTINGS, cases: CaseStore | None = None,
                 registry: CollectorRegistry | None = None) -> AlertsRuntime:
    """A runtime without broker or deliveries: for what it does with the cases alone."""
    rules = load_rules(None)
    return AlertsRuntime(settings, evaluator=AlertEvaluator(rules), notifier=Notifier(rules.routing),
                         outbox=Outbox({}), metrics=AlertsMetrics(registry or CollectorRegistry()),
                         publish_alert=None, publish_case=None, cases=cases)  # type: ignore[arg-type]


def opened_store(customer: str = "c-1", **evidence: float) -> tuple[CaseStore, str]:
    store = CaseStore()
    alert = make_alert(customer, at=T0)
    for event in store.on_alert(alert, T0, SETTINGS.sla_s, evidence or {"evidence_nps": 2.0}):
        store.apply(event)
    return store, alert.alert_id


def command(store: CaseStore, case_id: str, name: str, at: datetime, **body: object) -> None:
    store.apply(decide(store.get(case_id), name, CaseCommand(**{"by": "ana", **body}), at))


def test_the_lifecycle_folds_into_the_case() -> None:
    store, case_id = opened_store()
    case = store.get(case_id)
    assert case.state is CaseState.firing and case.due_at == T0 + timedelta(hours=1)
    command(store, case_id, "acknowledge", T0 + timedelta(minutes=1))
    command(store, case_id, "assign", T0 + timedelta(minutes=2), assignee="bo")
    command(store, case_id, "comments", T0 + timedelta(minutes=3), note="called, no answer")
    command(store, case_id, "assign", T0 + timedelta(minutes=4), assignee="cy")  # re-assign
    command(store, case_id, "resolve", T0 + timedelta(minutes=5), outcome="contacted_recovered", note="ok")
    command(store, case_id, "comments", T0 + timedelta(minutes=6), note="follow-up mail sent")
    case = store.get(case_id)
    assert case.state is CaseState.resolved and case.assignee == "cy" and case.outcome is Outcome.contacted_recovered
    assert [e.action for e in case.history] == [
        CaseAction.opened, CaseAction.acknowledged, CaseAction.assigned, CaseAction.commented,
        CaseAction.assigned, CaseAction.resolved, CaseAction.commented]
    assert [e.sequence for e in case.history] == list(range(7))
    assert fold(reversed(case.history)) == case  # the fold depends on the events only
    assert case.updated_at == T0 + timedelta(minutes=6)


@pytest.mark.parametrize(("before", "name", "body", "error", "message"), [
    (["resolve"], "resolve", {"outcome": "other"}, InvalidTransition, "is resolved: cannot resolve it (it is already resolved with outcome false_alarm)"),
    (["resolve"], "acknowledge", {}, InvalidTransition, "is resolved: cannot acknowledge it (it is resolved)"),
    (["resolve"], "assign", {"assignee": "x"}, InvalidTransition, "cannot assign it (it is resolved)"),
    (["acknowledge"], "acknowledge", {}, InvalidTransition, "is acknowledged: cannot acknowledge it (only a firing case"),
    ([], "resolve", {}, InvalidCommand, "resolving needs an `outcome`"),
    ([], "assign", {}, InvalidCommand, "assigning needs an `assignee`"),
    ([], "comments", {}, InvalidCommand, "a comment needs a `note`"),
])
def test_invalid_transitions_and_commands_are_refused_precisely(before, name, body, error, message) -> None:  # type: ignore[no-untyped-def]
    store, case_id = opened_store()
    for step in before:
        command(store, case_id, step, T0, **({"outcome": "false_alarm"} if step == "resolve" else {}))
    history = list(store.get(case_id).history)
    with pytest.raises(error) as caught:
        command(store, case_id, name, T0, **body)
    assert message in caught.value.detail and caught.value.case_id == case_id
    assert caught.value.status == (409 if error is InvalidTransition else 422)
    assert store.get(case_id).history == history  # nothing applied


def test_events_out_of_order_or_for_a_missing_case_are_refused_and_repeats_skipped() -> None:
    store, case_id = opened_store()
    case = store.get(case_id)
    with pytest.raises(InvalidTransition, match="expected event 1, got 5"):
        apply(case, CaseEvent(case_id=case_id, sequence=5, action=CaseAction.acknowledged, at=T0))
    with pytest.raises(InvalidTransition, match="first event must be 'opened'"):
        apply(None, CaseEvent(case_id="x", sequence=0, action=CaseAction.acknowledged, at=T0))
    assert store.apply(case.history[0]) is None  # at-least-once: a repeat is skipped


def test_condition_cleared_keeps_the_state_and_a_new_firing_is_a_new_case() -> None:
    store, case_id = opened_store()
    resolved = make_alert("c-1", status=AlertStatus.resolved, at=T0)
    [cleared] = store.on_alert(resolved, T0 + timedelta(minutes=1), SETTINGS.sla_s)
    store.apply(cleared)
    case = store.get(case_id)
    assert case.condition_cleared and case.state is CaseState.firing and case.alert.status is AlertStatus.resolved
    assert store.on_alert(resolved, T0, SETTINGS.sla_s) == []  # once
    again = make_alert("c-1", alert_id="a-c-1-again", at=T0 + timedelta(hours=1))
    [opened] = store.on_alert(again, T0 + timedelta(hours=1), SETTINGS.sla_s)
    assert opened.case_id == "a-c-1-again" and opened.action is CaseAction.opened


def test_sla_escalates_overdue_open_cases_once() -> None:
    store, case_id = opened_store()
    warning = make_alert("c-2", severity=Severity.warning, at=T0)
    for event in store.on_alert(warning, T0, SETTINGS.sla_s):
        store.apply(event)
    assert store.overdue(T0 + timedelta(minutes=59)) == []
    [escalated] = store.overdue(T0 + timedelta(minutes=61))  # critical: 1 h; warning: 2 h
    assert escalated.case_id == case_id and escalated.action is CaseAction.escalated
    assert escalated.details["overdue_s"] == 60.0
    store.apply(escalated)
    assert store.get(case_id).escalated and store.overdue(T0 + timedelta(minutes=61)) == []
    command(store, "a-c-2", "resolve", T0 + timedelta(minutes=90), outcome="fixed_root_cause")
    assert store.overdue(T0 + timedelta(hours=3)) == []  # resolved in time: never escalates


def test_a_silence_matching_a_new_case_is_recorded() -> None:
    store = CaseStore()
    silence = Silence(silence_id="s1", matchers={"unit": "berlin"}, starts_at=T0, ends_at=T0 + timedelta(hours=1),
                      created_by="ana", comment="maintenance")
    events = store.on_alert(make_alert("c-3", at=T0), T0, SETTINGS.sla_s, silences=[silence])
    assert [e.action for e in events] == [CaseAction.opened, CaseAction.silenced]
    assert events[1].details == {"silence_id": "s1"} and events[1].note == "maintenance"


def scored(customer: str, nps: int | None, at: datetime, sqi: float | None = None, event_id: str | None = None) -> ScoredEvent:
    event = FeedbackEvent.model_validate({
        "event_id": event_id or f"e-{uuid.uuid4().hex[:8]}", "occurred_at": at.isoformat(), "touchpoint": "store",
        "source": "test", "unit": "berlin", "customer_id": customer,
        "responses": [{"metric": "nps", "value": nps}] if nps is not None else [{"metric": "csat", "value": 3}]})
    return ScoredEvent(event=event, scorer_version="t", accepted_at=at, scored_at=at, nps=nps, sqi=sqi)


def test_closed_loop_recovery_and_its_rate() -> None:
    store = CaseStore()
    cases = {"promoter": 2.0, "improved": 2.0, "worse": 5.0, "silent": 1.0}
    for customer, nps in cases.items():
        for event in store.on_alert(make_alert(customer, at=T0), T0, SETTINGS.sla_s, {"evidence_nps": nps}):
            store.apply(event)
    later = T0 + timedelta(days=3)
    # the triggering event itself (in the evidence) is not a follow-up, nor is an older one
    assert store.on_feedback(scored("promoter", 1, later, event_id="e-promoter"), later) == []
    assert store.on_feedback(scored("promoter", 10, T0 - timedelta(minutes=1)), later) == []
    for customer, nps in [("promoter", 9), ("improved", 6), ("worse", 3)]:
        [event] = store.on_feedback(scored(customer, nps, later), later)
        store.apply(event)
    assert store.on_feedback(scored("promoter", 0, later), later) == []  # recorded once
    assert store.get("a-promoter").recovered is True
    assert store.get("a-improved").recovered is True and store.get("a-improved").history[-1].details["reason"] == "nps improved"
    assert store.get("a-worse").recovered is False
    report = store.recovery()
    assert (report["churn_cases"], report["followed_up"], report["recovered"], report["awaiting_feedback"]) == (4, 3, 2, 1)
    assert report["rate"] == pytest.approx(2 / 3) and report["rate_low"] < 2 / 3 < report["rate_high"]
    assert store.recovery(unit="elsewhere")["rate"] is None


def test_recovery_counts_for_a_resolved_case_too() -> None:
    store, case_id = opened_store("c-r")
    command(store, case_id, "resolve", T0, outcome="contacted_not_recovered")
    later = T0 + timedelta(days=1)
    [event] = store.on_feedback(scored("c-r", 10, later), later)
    store.apply(event)
    case = store.get(case_id)
    assert case.recovered is True and case.state is CaseState.resolved
    assert store.recovery()["by_outcome"] == {"contacted_not_recovered": {"followed_up": 1, "recovered": 1}}


def test_a_change_to_an_older_case_does_not_make_it_the_latest_case_of_its_fingerprint() -> None:
    store, first = opened_store("c-1")
    [cleared] = store.on_alert(make_alert("c-1", status=AlertStatus.resolved, at=T0), T0, SETTINGS.sla_s)
    store.apply(cleared)
    again = make_alert("c-1", alert_id="a-c-1-again", at=T0 + timedelta(hours=1))
    for event in store.on_alert(again, T0 + timedelta(hours=1), SETTINGS.sla_s):
        store.apply(event)

    command(store, first, "comment", T0 + timedelta(hours=2), note="called back, no answer")

    latest = store.latest_for(again.fingerprint)
    assert latest is not None and latest.case_id == "a-c-1-again"


def test_cases_that_are_over_are_forgotten_after_the_retention_and_the_rest_is_kept() -> None:
    """Over: resolved by a human AND the condition cleared. An open case, or a resolved one whose
    condition still holds (its alert is still firing and is restored from it), is kept however old."""
    store = CaseStore()
    for customer in ("over", "open", "still-firing", "recent"):
        for event in store.on_alert(make_alert(customer, at=T0), T0, SETTINGS.sla_s):
            store.apply(event)
    day = timedelta(days=1)
    for customer in ("over", "recent"):
        [cleared] = store.on_alert(make_alert(customer, status=AlertStatus.resolved, at=T0), T0 + day, SETTINGS.sla_s)
        store.apply(cleared)
    command(store, "a-over", "resolve", T0 + day, outcome="contacted_recovered")
    command(store, "a-still-firing", "resolve", T0 + day, outcome="false_alarm")
    command(store, "a-recent", "resolve", T0 + 40 * day, outcome="contacted_recovered")

    assert store.evict_closed(before=T0 + 30 * day) == ["a-over"]

    assert sorted(store.cases) == ["a-open", "a-recent", "a-still-firing"]
    assert store.latest_for(make_alert("over", at=T0).fingerprint) is None
    assert store.on_feedback(scored("over", 10, T0 + 31 * day), T0 + 31 * day) == []
    assert store.recovery()["churn_cases"] == 3
    assert store.evict_closed(before=T0 + 30 * day) == []  # once


def test_the_runtime_forgets_cases_over_for_longer_than_its_retention_and_counts_them() -> None:
    store, case_id = opened_store("c-old")
    [cleared] = store.on_alert(make_alert("c-old", status=AlertStatus.resolved, at=T0), T0, SETTINGS.sla_s)
    store.apply(cleared)
    command(store, case_id, "resolve", T0, outcome="other")
    registry = CollectorRegistry()
    runtime = bare_runtime(SETTINGS.model_copy(update={"case_retention_days": 30}), store, registry)

    assert runtime.forget_cases(T0 + timedelta(days=29)) == 0 and case_id in store.cases
    assert runtime.forget_cases(T0 + timedelta(days=31)) == 1 and case_id not in store.cases
    assert registry.get_sample_value("ksp_alerts_cases_forgotten_total") == 1


def test_the_cases_topic_is_created_never_to_expire_and_the_table_changelog_and_state_topic_compacted() -> None:
    from services.alerts.app import output_topic_kinds
    from services.alerts.repartition import InternalTopics

    configs = {name: configs for names, _, configs in output_topic_kinds(SETTINGS, InternalTopics.of("g"), 6)
               for name in names}

    assert configs[SETTINGS.cases_topic] == {"retention.ms": "-1"}
    assert configs[f"{SETTINGS.consumer_group}-cases-changelog"] == {"cleanup.policy": "compact"}
    assert configs[SETTINGS.state_topic_name()] == {"cleanup.policy": "compact"}


def test_where_the_broker_reports_batch_starts_as_end_offsets_the_alerts_producer_writes_one_record_per_batch() -> None:
    from services.alerts.app import faust_config
    from services.common.settings import KafkaSettings

    on_kafka = faust_config(SETTINGS)
    on_tansu = faust_config(SETTINGS.model_copy(update={"kafka": KafkaSettings(end_offsets_exact=False)}))
    assert on_kafka["producer_max_batch_size"] == SETTINGS.producer_max_batch_bytes > 1
    assert on_tansu["producer_max_batch_size"] == 1  # Faust's table recovery then reads to the true end
    assert load_settings(AlertsSettings, "dev").kafka.end_offsets_exact is False


# --------------------------------------------------------------------------- real broker and ClickHouse


def test_cases_are_rebuilt_from_the_topic(kafka) -> None:  # type: ignore[no-untyped-def]
    from aiokafka import AIOKafkaProducer

    from services.common.kafka import aiokafka_config, ensure_topics
    from services.common.settings import KafkaSettings

    settings = KafkaSettings(bootstrap_servers=kafka.bootstrap_servers)
    topic = f"test.cases.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    store, case_id = opened_store("c-topic")
    command(store, case_id, "acknowledge", T0)
    command(store, case_id, "resolve", T0, outcome="false_alarm")
    events = store.get(case_id).history

    async def scenario() -> list[CaseEvent]:
        producer = AIOKafkaProducer(**aiokafka_config(settings), enable_idempotence=False)
        await producer.start()
        try:
            for event in [*events, events[1]]:  # with a duplicate, as at-least-once can produce
                await producer.send_and_wait(topic, event.model_dump_json().encode(), key=event.case_id.encode())
        finally:
            await producer.stop()
        return await replay_topic(settings, topic, timeout_s=30)

    replayed = asyncio.run(scenario())
    rebuilt = CaseStore()
    assert rebuilt.rebuild(replayed) == 3
    assert rebuilt.get(case_id) == store.get(case_id)


def test_history_is_written_to_clickhouse(clickhouse) -> None:  # type: ignore[no-untyped-def]
    from services.common.clickhouse import connect, migrate
    from services.common.settings import ClickHouseSettings

    settings = ClickHouseSettings(url=clickhouse.url)
    migrate(settings)
    migrate(settings)  # idempotent
    customer = f"c-ch-{uuid.uuid4().hex[:6]}"
    store = CaseStore()
    alert = make_alert(customer, at=T0)
    writer = HistoryWriter(lambda: connect(settings), settings.database)
    writer.alert(alert, T0)
    for event in store.on_alert(alert, T0, SETTINGS.sla_s, {"evidence_nps": 1.0}):
        writer.case_event(event, store.apply(event))  # type: ignore[arg-type]
    event = decide(store.get(alert.alert_id), "resolve", CaseCommand(by="ana", outcome=Outcome.other), T0)
    writer.case_event(event, store.apply(event))  # type: ignore[arg-type]
    assert asyncio.run(writer.flush()) and asyncio.run(writer.flush())
    client = connect(settings)
    try:
        rows = client.query("SELECT sequence, action, state_after, customer_id, outcome FROM kundensprechen.alert_events "
                            "FINAL WHERE case_id = {c:String} ORDER BY sequence", parameters={"c": alert.alert_id}).result_rows
        alerts = client.query("SELECT status, labels['unit'], kind FROM kundensprechen.alerts FINAL "
                              "WHERE alert_id = {c:String}", parameters={"c": alert.alert_id}).result_rows
    finally:
        client.close()
    assert rows == [(0, "opened", "firing", customer, ""), (1, "resolved", "resolved", customer, "other")]
    assert alerts == [("firing", "berlin", "churn_risk")]


def follower_runtime() -> AlertsRuntime:
    return bare_runtime(SETTINGS.model_copy(update={"worker_id": "b"}))


def test_a_second_worker_adopts_the_cases_table_and_leaves_system_events_to_the_owner() -> None:
    owner = CaseStore()  # worker "a"
    alert = make_alert("c-follow", at=T0)
    for event in owner.on_alert(alert, T0, SETTINGS.sla_s, {"worker_id": "a"}):
        owner.apply(event)
    opened = owner.get(alert.alert_id)
    command(owner, alert.alert_id, "acknowledge", T0)
    acknowledged = owner.get(alert.alert_id)

    follower = follower_runtime()
    assert follower.adopt(opened) == opened and follower.adopt(acknowledged) == acknowledged
    assert follower.adopt(opened) is None  # an older version (an echo of an earlier write): skipped
    assert follower.cases.get(alert.alert_id) == acknowledged
    assert follower.cases.latest_for(alert.fingerprint) == acknowledged
    later = T0 + timedelta(days=1)
    assert follower.cases.overdue(later, "b") == [] and len(follower.cases.overdue(later, "a")) == 1

    follower.gone(alert.alert_id)  # deleted from the table by another worker
    assert alert.alert_id not in follower.cases.cases and follower.cases.latest_for(alert.fingerprint) is None


def test_when_two_workers_change_a_case_at_once_every_worker_ends_with_the_tables_later_version() -> None:
    owner = CaseStore()
    alert = make_alert("c-race", at=T0)
    for event in owner.on_alert(alert, T0, SETTINGS.sla_s, {"worker_id": "a"}):
        owner.apply(event)
    opened = owner.get(alert.alert_id)
    by_a = apply(opened, CaseStore.next_event(opened, CaseAction.commented, T0, note="from a"))
    by_b = apply(opened, CaseStore.next_event(opened, CaseAction.commented, T0, note="from b"))
    worker_a, worker_b = follower_runtime(), follower_runtime()
    worker_a.adopt(by_a)
    worker_b.adopt(by_b)
    for worker in (worker_a, worker_b):  # the changelog's order: a's write, then b's
        worker.adopt(by_a)
        worker.adopt(by_b)
    assert worker_a.cases.get(alert.alert_id) == worker_b.cases.get(alert.alert_id) == by_b
