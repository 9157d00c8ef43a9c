"""Chaos harness: the three services as real processes, a bounded HTTP load, fault helpers,
and the invariant checker used by the chaos tests, the negative control and the soak script.

The checker functions return a list of violations (strings); an empty list means the run kept
every promise: each event ingest acknowledged (202) is stored exactly once, the minute
aggregates equal a recount of the stored rows, and every alert is delivered once per channel
(deduplicated by its idempotency key) or parked and visible in the alerts API.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from deploy.embedded.launcher import RunScope, ServiceStack, http_ok, wait_until
from deploy.embedded.process import free_port
from services.common.clickhouse import connect
from services.common.settings import ClickHouseSettings

__all__ = ["http_ok", "wait_until"]  # part of the harness's vocabulary for the chaos tests and the soak
BROKEN_SCORING = [sys.executable, "-m", "tests.chaos.broken_scoring"]
CHURN_TEXT = "Ich kündige meinen Vertrag, der Service war eine Katastrophe."
COMMENTS = [
    "Sehr freundliche Beratung, alles schnell erledigt.",
    "The app keeps crashing when I try to pay.",
    "Lange Wartezeit an der Hotline, aber am Ende geholfen.",
    "Great service, I will recommend you to my friends!",
]
MARKER_ENV = "KSP_CHAOS_MARKER"


# --------------------------------------------------------------------------- webhook receiver


class FreezableReceiver:
    """A webhook receiver that can be frozen: while frozen, requests are held unanswered (as
    by a SIGSTOPped process); on thaw they are processed and answered. Records every delivery."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.channel = name  # the alerts service's channel name for this URL (set by the Stack)
        self.deliveries: list[tuple[str, dict[str, Any]]] = []  # (idempotency key, alert)
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self.held = 0  # requests that arrived while frozen
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if not receiver._open.is_set():
                    with receiver._lock:
                        receiver.held += 1
                    receiver._open.wait(timeout=120)
                with receiver._lock:
                    receiver.deliveries.append((self.headers.get("idempotency-key", ""), json.loads(body)))
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up while we were frozen

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # broken pipes after a thaw are expected

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/{name}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def freeze(self) -> None:
        self._open.clear()

    def thaw(self) -> None:
        self._open.set()

    def snapshot(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.deliveries)

    def stop(self) -> None:
        self.thaw()
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- the stack


# ingest answers 503 quickly while the broker is frozen and has no rate limit for the load; the
# sink backs off briefly; alerts time out fast, so that a frozen receiver parks an alert within seconds.
CHAOS_ENV = {
    "KSP_PRODUCE_TIMEOUT_S": "3",
    "KSP_RETRY_AFTER_S": "1",
    "KSP_RATE_LIMIT_ENABLED": "false",
    "KSP_AUTH_ENABLED": "false",
    "KSP_SINK_BACKOFF_MAX_S": "2",
    "KSP_WEBHOOK_SECRET": "chaos-secret",
    "KSP_DELIVERY_ATTEMPTS": "4",
    "KSP_DELIVERY_BACKOFF_S": "0.25",
    "KSP_DELIVERY_TIMEOUT_S": "0.5",
    "KSP_DELIVERY_BACKOFF_MAX_S": "1",
}


@dataclass
class Stack:
    """ingest + scoring (+ alerts) as real processes on their own topics and groups."""

    bootstrap: str
    clickhouse_url: str
    logs: Path
    receivers: list[FreezableReceiver] = field(default_factory=list)
    with_alerts: bool = True
    services: tuple[str, ...] = ("ingest", "scoring", "alerts")
    scoring_argv: list[str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        scope = RunScope(f"chaos-{self.run_id}")
        self.topics = scope.topics
        self.marker = scope.prefix
        for i, receiver in enumerate(self.receivers):  # how the alerts service names fallback webhooks
            receiver.channel = "webhook" if i == 0 else f"webhook-{i + 1}"
        env = {**CHAOS_ENV, MARKER_ENV: self.marker, "KSP_WEBHOOK_URLS": json.dumps([r.url for r in self.receivers]),
               **self.extra_env}
        self.launcher = ServiceStack(self.bootstrap, self.clickhouse_url, self.logs, scope=scope, env=env)
        for name in self.services:
            if name != "alerts" or self.with_alerts:
                self.launcher.add(name, argv=self.scoring_argv if name == "scoring" else None)
        self.processes = self.launcher.processes
        self.ports = {name: service.port for name, service in self.launcher.services.items()}

    @property
    def ingest_url(self) -> str:
        return self.url("ingest")

    @property
    def scoring_url(self) -> str:
        return self.url("scoring")

    @property
    def alerts_url(self) -> str:
        return self.url("alerts")

    def url(self, name: str) -> str:
        return self.launcher[name].url

    def start(self, timeout: float = 90) -> Stack:
        self.launcher.start(timeout)
        return self

    def wait_ready(self, name: str, timeout: float = 90) -> None:
        self.launcher[name].wait_ready(timeout)

    def kill(self, name: str) -> None:
        """SIGKILL to the process group: no shutdown, no flush, no commit."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        self.processes[name].start()

    def stop(self) -> None:
        self.launcher.stop()

    def alerts_api(self) -> dict[str, Any]:
        return httpx.get(f"{self.alerts_url}/v1/alerts", timeout=5).json()

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return self.launcher[name].log_tail(chars)


# --------------------------------------------------------------------------- load


@dataclass
class LoadStats:
    batches_sent: int = 0
    acked_requests: int = 0
    rejected_requests: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    transport_errors: int = 0
    resends: int = 0
    max_latency_s: float = 0.0
    unacked_at_end: int = 0


class Load:
    """Posts events to ingest over HTTP at `rate` events/s from one bounded background thread.

    Every event has its own id; an id goes into `acked` only when ingest answered 202 for it.
    A batch answered 503 or lost to a timeout is resent with the same ids (as the API contract
    asks of clients) until acknowledged or the load ends."""

    def __init__(self, ingest_url: str, unit: str, *, rate: float = 200, batch: int = 5,
                 duration_s: float = 10, max_events: int = 20_000, churn_every: int = 50,
                 seed: int = 1, drain_s: float = 20) -> None:
        self.url = f"{ingest_url}/v1/feedback"
        self.unit = unit
        self.rate = rate
        self.batch = batch
        self.duration_s = duration_s
        self.max_events = max_events
        self.churn_every = churn_every
        self.drain_s = drain_s
        self.rng = random.Random(seed)
        self.acked: set[str] = set()
        self.churn_customers: dict[str, str] = {}  # event id -> customer id (churn events)
        self.stats = LoadStats()
        self._seq = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded_run, name=f"load-{unit}", daemon=True)
        self.started_at = 0.0
        self.error: BaseException | None = None

    def _event(self) -> dict[str, Any]:
        self._seq += 1
        seq = self._seq
        rng = self.rng
        event: dict[str, Any] = {
            "event_id": f"{self.unit}-{seq:07d}",
            "occurred_at": datetime.now(UTC).isoformat(),
            "touchpoint": rng.choice(["web", "app", "store", "call_centre", "chat"]),
            "source": "chaos-load",
            "unit": self.unit,
            "segment": rng.choice(["private", "business"]),
        }
        if self.churn_every and seq % self.churn_every == 0:
            customer = f"{self.unit}-cust-{seq}"
            event.update(customer_id=customer, responses=[{"metric": "nps", "value": 2}],
                         comment={"text": CHURN_TEXT})
            self.churn_customers[event["event_id"]] = customer
            return event
        responses = [{"metric": "nps", "value": rng.randint(0, 10)}]
        if rng.random() < 0.5:
            responses.append({"metric": "csat", "value": rng.randint(1, 5)})
        if rng.random() < 0.3:
            responses.append({"metric": "ces", "value": rng.randint(1, 7)})
        event["responses"] = responses
        if rng.random() < 0.4:
            event["comment"] = {"text": rng.choice(COMMENTS)}
        return event

    def start(self) -> Load:
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> Load:
        self._thread.join(timeout if timeout is not None else self.duration_s + self.drain_s + 30)
        assert not self._thread.is_alive(), "load thread did not end"
        if self.error is not None:
            raise AssertionError(f"the load failed: {self.error!r}") from self.error
        return self

    def _guarded_run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def _run(self) -> None:
        interval = self.batch / self.rate
        end = self.started_at + self.duration_s
        hard_end = end + self.drain_s
        pending: list[dict[str, Any]] | None = None
        next_at = self.started_at
        with httpx.Client(timeout=httpx.Timeout(10.0)) as client:
            while True:
                now = time.monotonic()
                if now >= hard_end or (self._stop.is_set() and pending is None):
                    break
                if pending is None:
                    if now >= end or self._seq >= self.max_events or self._stop.is_set():
                        break
                    pending = [self._event() for _ in range(self.batch)]
                else:
                    self.stats.resends += 1
                if now < next_at:
                    time.sleep(next_at - now)
                next_at = max(next_at + interval, time.monotonic() - 1.0)
                started = time.monotonic()
                try:
                    response = client.post(self.url, json=pending)
                except httpx.HTTPError:
                    self.stats.transport_errors += 1
                    time.sleep(0.2)
                    continue
                finally:
                    self.stats.batches_sent += 1
                    self.stats.max_latency_s = max(self.stats.max_latency_s, time.monotonic() - started)
                if response.status_code == 202:
                    self.stats.acked_requests += 1
                    self.acked.update(response.json()["event_ids"])
                    pending = None
                else:
                    self.stats.rejected_requests[response.status_code] += 1
                    if response.status_code != 503:  # not retryable: a bug in the load itself
                        raise AssertionError(f"ingest answered {response.status_code}: {response.text[:500]}")
                    time.sleep(min(1.0, float(response.headers.get("retry-after", "1"))))
        self.stats.unacked_at_end = len(pending) if pending else 0

    @property
    def acked_churn_customers(self) -> set[str]:
        return {c for e, c in self.churn_customers.items() if e in self.acked}


# --------------------------------------------------------------------------- invariants

AGG_INT = ["responses", "nps_n", "promoters", "passives", "detractors", "csat_n", "csat_top_box",
           "ces_n", "sqi_n", "sentiment_n", "negative_comments", "churn_intent", "complaints"]
AGG_FLOAT = ["csat_sum", "csat_sumsq", "ces_sum", "ces_sumsq", "sqi_sum", "sqi_sumsq",
             "sentiment_sum", "sentiment_sumsq"]
_RECOUNT = {
    "responses": "count()",
    "nps_n": "countIf(nps IS NOT NULL)",
    "promoters": "countIf(nps_category = 'promoter')",
    "passives": "countIf(nps_category = 'passive')",
    "detractors": "countIf(nps_category = 'detractor')",
    "csat_n": "countIf(csat IS NOT NULL)",
    "csat_top_box": "countIf(csat_top_box = true)",
    "ces_n": "countIf(ces IS NOT NULL)",
    "sqi_n": "countIf(sqi IS NOT NULL)",
    "sentiment_n": "countIf(sentiment IS NOT NULL)",
    "negative_comments": "countIf(sentiment_label = 'negative')",
    "churn_intent": "countIf(churn_intent)",
    "complaints": "countIf(complaint)",
    # sumIf over a Nullable column is NULL for a group without answers; the view stores 0 there.
    **{f"{m}_sum": f"ifNull(sumIf(toFloat64({m}), {m} IS NOT NULL), 0)" for m in ("csat", "ces", "sqi", "sentiment")},
    **{f"{m}_sumsq": f"ifNull(sumIf(toFloat64({m}) * toFloat64({m}), {m} IS NOT NULL), 0)"
       for m in ("csat", "ces", "sqi", "sentiment")},
}


def _query(clickhouse_url: str, sql: str, *, database: str = "kundensprechen",
           **parameters: Any) -> list[tuple[Any, ...]]:
    client = connect(ClickHouseSettings(url=clickhouse_url, database=database))
    try:
        return list(client.query(sql, parameters=parameters).result_rows)
    finally:
        client.close()


def stored_counts(clickhouse_url: str, unit: str) -> dict[str, int]:
    rows = _query(clickhouse_url, "SELECT event_id, count() FROM kundensprechen.feedback_events "
                  "WHERE unit = {unit:String} GROUP BY event_id", unit=unit)
    return {event_id: int(n) for event_id, n in rows}


def _examples(items: list[Any], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in sorted(items)[:n])
    return shown + (", …" if len(items) > n else "")


def check_storage(clickhouse_url: str, unit: str, acked: set[str]) -> list[str]:
    """Every acknowledged event stored, none stored more than once (raw rows, no FINAL)."""
    counts = stored_counts(clickhouse_url, unit)
    violations = []
    missing = [e for e in acked if e not in counts]
    if missing:
        violations.append(f"{len(missing)} of {len(acked)} acknowledged events are missing from "
                          f"feedback_events: {_examples(missing)}")
    repeated = [f"{e}×{n}" for e, n in counts.items() if n > 1]
    if repeated:
        violations.append(f"{len(repeated)} events are stored more than once: {_examples(repeated)}")
    return violations


def check_aggregates(clickhouse_url: str, unit: str, database: str = "kundensprechen") -> list[str]:
    """`quality_minute` (summed) equals a recount of the deduplicated raw rows (FINAL)."""
    keys = "minute, touchpoint, segment, internal"
    stored = _query(
        clickhouse_url,
        f"SELECT {keys}, " + ", ".join(f"sum({c})" for c in AGG_INT + AGG_FLOAT)
        + f" FROM {database}.quality_minute WHERE unit = {{unit:String}} GROUP BY " + keys,
        database=database, unit=unit)
    recount = _query(
        clickhouse_url,
        "SELECT toStartOfMinute(occurred_at) AS minute, touchpoint, segment, internal, "
        + ", ".join(_RECOUNT[c] for c in AGG_INT + AGG_FLOAT)
        + f" FROM {database}.feedback_events FINAL WHERE unit = {{unit:String}} GROUP BY " + keys,
        database=database, unit=unit)
    a = {tuple(r[:4]): r[4:] for r in stored}
    b = {tuple(r[:4]): r[4:] for r in recount}
    violations = []
    for key in sorted(set(a) | set(b), key=str):
        if key not in a or key not in b:
            violations.append(f"aggregate group {key} only in {'quality_minute' if key in a else 'the recount'}")
            continue
        for i, column in enumerate(AGG_INT + AGG_FLOAT):
            x, y = a[key][i], b[key][i]
            if column in AGG_INT:
                bad = int(x) != int(y)
            else:
                bad = abs(float(x) - float(y)) > 1e-6 * max(1.0, abs(float(y)))
            if bad:
                violations.append(f"quality_minute {key} {column}={x} but recount={y}")
    return violations[:20] + ([f"… {len(violations) - 20} more aggregate mismatches"] if len(violations) > 20 else [])


def read_topic(bootstrap: str, topic: str, *, quiet_s: float = 1.5, timeout: float = 15) -> list[Any]:
    """Every record of `topic`, by manual assignment (no group); stops after `quiet_s` without news."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=200)
    records: list[Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set(range(4))
        parts = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        last_news = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_news < quiet_s:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
                last_news = time.monotonic()
        return records
    finally:
        consumer.close()


def raised_alerts(bootstrap: str, topic: str, unit: str) -> dict[str, dict[str, Any]]:
    """Churn-risk alerts of `unit` the alerts service published as firing, by alert id. An alert
    the routing rules inhibit (default rules: a firing aggregate drop of the same touchpoint and
    unit) is not notified by design; it is returned with `"_inhibited": True`."""
    found: dict[str, dict[str, Any]] = {}
    drops: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_topic(bootstrap, topic):
        try:
            alert = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        if not isinstance(alert, dict) or alert.get("labels", {}).get("unit") != unit:
            continue
        if alert.get("kind") == "aggregate_drop":
            drops[alert.get("labels", {}).get("touchpoint", "")].append(alert)
        elif alert.get("kind") == "churn_risk" and alert.get("status") == "firing":
            found.setdefault(alert["alert_id"], alert)
    for alert in found.values():
        touchpoint = alert.get("labels", {}).get("touchpoint", "")
        alert["_inhibited"] = any(_drop_covers(d, alert.get("starts_at", "")) for d in drops.get(touchpoint, []))
    return found


def _drop_covers(drop: dict[str, Any], at: str) -> bool:
    """Whether an aggregate-drop state change covers time `at` (ISO strings compare in order
    when both are UTC, as the service writes them)."""
    if drop.get("status") == "firing":
        return str(drop.get("starts_at", "")) <= at
    return str(drop.get("starts_at", "")) <= at <= str(drop.get("ends_at") or "9999")


def _notified_alerts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerts a webhook body carries: a notification (`alerts: [...]`) or one alert."""
    if isinstance(body.get("alerts"), list):
        return [a for a in body["alerts"] if isinstance(a, dict)]
    return [body] if "alert_id" in body else []


def _parked_for(api: dict[str, Any], receiver: FreezableReceiver) -> set[str]:
    ids: set[str] = set()
    for p in api.get("parked", []):
        if p.get("channel") == receiver.channel or receiver.url in str(p.get("error", "")):
            ids.update(p.get("alert_ids") or [p.get("alert_id")])
    return ids


def check_alerts(api: dict[str, Any], receivers: list[FreezableReceiver], unit: str,
                 expected_customers: set[str], raised: dict[str, dict[str, Any]]) -> list[str]:
    """Each acknowledged churn event raised an alert (published on the alerts topic); each such
    alert reached every channel in exactly one notification (deduplicated by idempotency key:
    one key, one body) or is parked for that channel and listed by GET /v1/alerts."""
    violations = []
    customers = {a.get("labels", {}).get("customer_id") for a in raised.values()}
    missing = expected_customers - customers
    if missing:
        violations.append(f"{len(missing)} churn events raised no alert: {_examples(list(missing))}")
    for receiver in receivers:
        bodies_by_key: dict[str, set[str]] = defaultdict(set)
        keys_by_alert: dict[str, set[str]] = defaultdict(set)
        for key, body in receiver.snapshot():
            mine = [a for a in _notified_alerts(body) if a.get("labels", {}).get("unit") == unit
                    and a.get("kind") == "churn_risk" and a.get("status") == "firing"]
            if not mine:
                continue
            bodies_by_key[key].add(json.dumps(body, sort_keys=True))
            for alert in mine:
                keys_by_alert[alert["alert_id"]].add(key)
        for key, bodies in bodies_by_key.items():
            if len(bodies) > 1:
                violations.append(f"{receiver.name}: idempotency key {key} arrived with {len(bodies)} different bodies")
        parked = _parked_for(api, receiver)
        for alert_id, alert in raised.items():
            keys = keys_by_alert.get(alert_id, set())
            if len(keys) > 1:
                violations.append(f"{receiver.name}: alert {alert_id} notified under {len(keys)} keys")
            if not keys and alert_id not in parked and not alert.get("_inhibited"):
                violations.append(f"{receiver.name}: alert {alert_id} neither delivered nor parked")
        unknown = set(keys_by_alert) - set(raised)
        if unknown:
            violations.append(f"{receiver.name}: got alerts never published: {_examples(list(unknown))}")
    return violations


def alerts_settled(api: dict[str, Any], receivers: list[FreezableReceiver], unit: str,
                   expected_customers: set[str], raised: dict[str, dict[str, Any]]) -> bool:
    if not expected_customers <= {a.get("labels", {}).get("customer_id") for a in raised.values()}:
        return False
    for receiver in receivers:
        got = {a.get("alert_id") for _, b in receiver.snapshot() for a in _notified_alerts(b)}
        parked = _parked_for(api, receiver)
        if any(aid not in got and aid not in parked and not a.get("_inhibited") for aid, a in raised.items()):
            return False
    return True


def check_invariants(clickhouse_url: str, unit: str, acked: set[str], *, alerts: dict[str, Any] | None = None,
                     receivers: list[FreezableReceiver] = (), expected_customers: set[str] = frozenset(),  # type: ignore[assignment]
                     raised: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """All invariants of a chaos run; [] when none is violated."""
    violations = check_storage(clickhouse_url, unit, acked) + check_aggregates(clickhouse_url, unit)
    if alerts is not None:
        violations += check_alerts(alerts, list(receivers), unit, set(expected_customers), raised or {})
    return violations


def wait_stored(clickhouse_url: str, unit: str, acked: set[str], timeout: float) -> bool:
    """Until every acknowledged id is stored (or timeout); then a short settle for stragglers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if acked <= set(stored_counts(clickhouse_url, unit)):
                time.sleep(2.0)  # let late duplicates (replays) land before checking
                return True
        except Exception:  # noqa: BLE001, S110 - ClickHouse may be restarting
            pass
        time.sleep(0.5)
    return False


# --------------------------------------------------------------------------- processes


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = (int(rest[1]), rest[0])
    return table


def descendants(root: int | None = None) -> dict[int, str]:
    """pid -> state of every descendant of `root` (default: this process)."""
    root = os.getpid() if root is None else root
    table = _proc_table()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = table[child][1]
            todo.append(child)
    return found


def marked_processes(marker: str) -> list[int]:
    """Processes (orphans included) whose environment carries `KSP_CHAOS_MARKER=marker`."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def leftover_processes(baseline: set[int], markers: list[str]) -> list[str]:
    """Violations: descendants of this process that were not there before, zombies, and any
    process (even reparented) started by a chaos stack."""
    violations = []
    for pid, state in descendants().items():
        if pid not in baseline:
            cmd = _cmdline(pid)
            violations.append(f"process {pid} ({state}) left behind: {cmd}")
    for marker in markers:
        for pid in marked_processes(marker):
            violations.append(f"process {pid} of stack {marker} still running: {_cmdline(pid)}")
    return sorted(set(violations))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"
