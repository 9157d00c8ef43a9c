"""Fault injection under steady load: every promise holds after the fault, or the test says which not.

Each scenario posts events to ingest over HTTP (200 events/s, one bounded thread, ids recorded
on 202), injects one fault, lets the load drain and runs the invariant checker
(tests/chaos/harness.py): acknowledged events stored exactly once, minute aggregates equal a
recount of the raw rows, alerts delivered once per channel or parked, no process left behind.
The negative control runs a deliberately broken sink and requires the checker to object.
Scenarios share one stack; each has its own unit, so its invariants are its own.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.chaos.conftest import ChaosEnv
from tests.chaos.harness import (
    BROKEN_SCORING,
    Load,
    Stack,
    alerts_settled,
    check_invariants,
    descendants,
    leftover_processes,
    raised_alerts,
    stored_counts,
    wait_stored,
    wait_until,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]


def _unit(name: str) -> str:
    return f"chaos-{name}-{uuid.uuid4().hex[:6]}"


def _settle(env: ChaosEnv, stack: Stack, load: Load, *, alerts: bool = True, timeout: float = 60) -> list[str]:
    """Wait for the pipeline to store what was acknowledged (and alerts to settle), then check."""
    load.join()
    print(f"{load.unit}: {len(load.acked)} acknowledged, {load.stats}")
    assert load.acked, f"no event was acknowledged: {load.stats}"
    stored = wait_stored(env.clickhouse.url, load.unit, load.acked, timeout)
    receivers = stack.receivers if alerts else []
    api, raised = None, {}
    if alerts:
        def settled() -> bool:
            nonlocal raised
            raised = raised_alerts(env.broker.bootstrap_servers, stack.topics.alerts, load.unit)
            return alerts_settled(stack.alerts_api(), receivers, load.unit, load.acked_churn_customers, raised)
        try:
            wait_until(settled, 40, "alerts to settle", interval=1.0)
        except AssertionError:
            pass  # the checker below says what is missing
        api = stack.alerts_api()
        raised = raised_alerts(env.broker.bootstrap_servers, stack.topics.alerts, load.unit)
        inhibited = sum(1 for a in raised.values() if a.get("_inhibited"))
        print(f"{len(raised)} churn alerts raised ({inhibited} inhibited), "
              f"{len(api.get('parked', []))} deliveries parked")
    violations = check_invariants(env.clickhouse.url, load.unit, load.acked, alerts=api, receivers=receivers,
                                  expected_customers=load.acked_churn_customers, raised=raised)
    if not stored:
        violations.append("pipeline did not store all acknowledged events within "
                          f"{timeout:.0f} s\n--- scoring log ---\n{stack.log_tail('scoring')}")
    return violations


def _wait_some_stored(env: ChaosEnv, unit: str, rows: int = 200) -> None:
    """Until the sink is storing this unit's events (so a kill interrupts real work)."""
    wait_until(lambda: sum(stored_counts(env.clickhouse.url, unit).values()) >= rows, 45,
               f"{rows} rows of {unit} to be stored", interval=0.3)


def _managed_pids(env: ChaosEnv) -> set[int]:
    pids = {env.broker.process.pid, env.clickhouse.pid}
    for stack in env.stacks:
        pids |= {p.pid for p in stack.processes.values() if p.alive()}
    return {p for p in pids if p is not None}


def _assert_no_strays(env: ChaosEnv) -> None:
    """Only the processes we manage (and their own children) are alive; no zombies."""
    managed = _managed_pids(env)
    allowed = set(managed)
    for pid in managed:
        allowed |= set(descendants(pid))
    stray = []
    for pid, state in descendants().items():
        if pid in env.baseline:
            continue
        if state == "Z":
            stray.append(f"zombie {pid}")
        elif pid not in allowed:
            stray.append(f"unmanaged {pid}")
    assert not stray, stray


def test_sigkill_scoring_worker(chaos_env: ChaosEnv) -> None:
    """(a) SIGKILL the scoring worker mid-load, restart it: replays are stored once."""
    stack = chaos_env.stack
    load = Load(stack.ingest_url, _unit("kill-scoring"), duration_s=12).start()
    _wait_some_stored(chaos_env, load.unit)
    old = stack.processes["scoring"].pid
    stack.kill("scoring")
    stack.restart("scoring")
    assert stack.processes["scoring"].pid != old
    violations = _settle(chaos_env, stack, load)
    assert violations == [], "\n".join(violations)
    assert stack.processes["scoring"].alive()
    _assert_no_strays(chaos_env)


def test_freeze_broker(chaos_env: ChaosEnv) -> None:
    """(b) SIGSTOP the broker for 20 s under load, then SIGCONT: ingest answers 503 meanwhile,
    the load resends with the same ids, consumers rejoin; nothing acknowledged is lost."""
    stack = chaos_env.stack
    load = Load(stack.ingest_url, _unit("freeze-broker"), duration_s=27, drain_s=30).start()
    time.sleep(4)
    chaos_env.broker.freeze()
    try:
        time.sleep(20)
    finally:
        chaos_env.broker.thaw()
    violations = _settle(chaos_env, stack, load, timeout=90)
    assert violations == [], "\n".join(violations)
    assert load.stats.rejected_requests.get(503, 0) + load.stats.transport_errors > 0, \
        "the freeze did not reach ingest"
    for name in stack.processes:
        assert stack.processes[name].alive(), f"{name} died\n{stack.log_tail(name)}"
    _assert_no_strays(chaos_env)


def test_kill_and_restart_clickhouse(chaos_env: ChaosEnv) -> None:
    """(c) SIGKILL ClickHouse mid-load, restart it 6 s later on the same port and data: the sink
    retries with backoff, stops consuming meanwhile, and stores everything once."""
    stack = chaos_env.stack
    load = Load(stack.ingest_url, _unit("kill-clickhouse"), duration_s=14).start()
    time.sleep(4)
    chaos_env.clickhouse.kill()
    time.sleep(6)
    chaos_env.clickhouse.start()
    violations = _settle(chaos_env, stack, load)
    assert violations == [], "\n".join(violations)
    assert stack.processes["scoring"].alive(), stack.log_tail("scoring")
    _assert_no_strays(chaos_env)


def test_freeze_webhook_receivers(chaos_env: ChaosEnv) -> None:
    """(d) Receiver a stops answering for 2 s, receiver b for 10 s, during a stream of churn
    alerts: a's alerts arrive after retries; b's are delivered or parked and listed in the API."""
    stack = chaos_env.stack
    a, b = stack.receivers
    load = Load(stack.ingest_url, _unit("freeze-webhook"), duration_s=14, churn_every=25).start()
    time.sleep(3)
    a.freeze()
    b.freeze()
    try:
        time.sleep(2)
        a.thaw()
        time.sleep(8)
    finally:
        a.thaw()
        b.thaw()
    violations = _settle(chaos_env, stack, load, timeout=60)
    assert violations == [], "\n".join(violations)
    api = stack.alerts_api()
    parked_b = [p for p in api["parked"] if p.get("channel") == b.channel or b.url in str(p.get("error"))]
    assert a.held + b.held > 0, "no delivery hit a frozen receiver"
    assert parked_b, "receiver b was frozen for 10 s but nothing was parked"
    _assert_no_strays(chaos_env)


def test_negative_control_broken_sink_is_caught(chaos_env: ChaosEnv) -> None:
    """A sink that forgets stored ids, has no dedup token and never commits: after SIGKILL and
    restart it stores events twice; the invariant checker must report it."""
    progress = chaos_env.logs / f"broken-sink-progress-{uuid.uuid4().hex[:6]}"
    stack = chaos_env.new_stack(with_alerts=False, scoring_argv=BROKEN_SCORING,
                                extra_env={"KSP_CHAOS_PROGRESS": str(progress)})
    load = Load(stack.ingest_url, _unit("broken-sink"), duration_s=10, churn_every=0).start()
    _wait_some_stored(chaos_env, load.unit)
    stack.kill("scoring")
    progress.unlink(missing_ok=True)
    stack.restart("scoring")
    load.join()
    # drained: the restarted sink has flushed at least as many messages as were acknowledged
    wait_until(lambda: progress.exists() and int(progress.read_text() or 0) >= len(load.acked), 90,
               "the restarted broken sink to re-consume the scored topic", interval=0.5)
    violations = _settle(chaos_env, stack, load, alerts=False)
    stack.stop()
    print(f"negative control: {len(violations)} violations reported, e.g. {violations[:2]}")
    # The raw duplicates show up as rows stored twice until ReplacingMergeTree merges them away;
    # the minute aggregates (fed by the materialized view at insert) keep the double count.
    assert violations, "the checker did not notice a sink that stores events twice"
    assert any("more than once" in v or "quality_minute" in v for v in violations), violations


def test_no_process_left_behind(chaos_env: ChaosEnv) -> None:
    """After the suite stops its stacks, broker and ClickHouse: no descendant of this process
    and no process carrying a stack's marker (even reparented orphans) remains."""
    markers = [s.marker for s in chaos_env.stacks]
    chaos_env.shutdown()
    deadline = time.monotonic() + 10
    while (left := leftover_processes(chaos_env.baseline, markers)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
