"""Alert notifications with Alertmanager semantics: pure, time passed in.

The alerts service feeds every alert state change to :meth:`Notifier.receive` and calls
:meth:`Notifier.due` on its tick; ``due`` returns the :class:`Notification` s to deliver now.

Semantics (Prometheus Alertmanager's, made explicit):

* **Routing.** ``routing.routes`` are tried in order; an alert goes to the receiver of the first
  route whose matchers all hold, and also to later matching routes while the matched route says
  ``continue: true``. An alert no route takes goes to ``routing.default``. Each route has its
  own ``group_by`` and timings (unset: the default's).
* **Grouping.** Per route, alerts with the same values of the ``group_by`` labels form a group
  (``group_by: ['...']`` groups by all labels, i.e. one group per alert). A group's first
  notification waits ``group_wait`` after its first alert (to collect related ones); after
  that the group is looked at every ``group_interval``: it is notified when it has firing
  alerts the receiver was not told about, or alerts that resolved since the last notification;
  an unchanged firing group is re-sent after ``repeat_interval``.
* **Deduplication.** Receiving the same alert again (same ``alert_id`` and status) changes
  nothing; a newer state of an alert (resolved, or a new ``alert_id`` for the fingerprint)
  replaces the older one.
* **Silences.** An alert whose labels match all matchers of an active silence
  (``starts_at <= now < ends_at``) is not notified. When the silence ends and the alert still
  fires, the next look at its group notifies it (unless the receiver was told about it before
  the silence, then the usual repeat applies).
* **Inhibition: suppress.** While an alert matching an inhibit rule's ``source`` fires, alerts
  matching its ``target`` with the same values of the ``equal`` labels are not notified (an
  alert never inhibits itself). They still exist (the evaluator reports them, cases are opened);
  only the notification is suppressed, as in Alertmanager. When the source resolves, targets
  still firing are notified at their group's next look. (The alternative, merging targets into
  the source's group, was not chosen: it would make a group's membership depend on other
  alerts' lifetimes and break the stable group keys receivers use for de-duplication.)
* **Resolved.** A resolved alert is notified (once) to every group that notified it while it
  fired -- also when it is silenced or inhibited by then, so receivers can close what they
  opened. A group whose alerts have all resolved sends one notification with status
  ``resolved`` at its next look (within ``group_interval``) and is then forgotten: a later firing
  alert with the same group labels starts a new group (new ``group_wait``, new keys). Alerts
  that resolve before their group was ever notified are dropped silently (no orphan resolved).
* **Digests.** ``routing.digests`` send, at a time of day in a time zone, one notification to
  the receiver with every matching alert that was firing at some time during the past day
  (including silenced and inhibited ones: a digest is the day's record). Nothing is sent for a
  day without alerts. The last digest time handled is reported (``take_digest_marks``) and
  given back after a restart or a hand-over (``restore_digests``): a digest that fell due while
  no notifier ran is sent late, once, instead of being skipped.
* **Idempotency.** ``Notification.idempotency_key`` is a hash of the receiver, the group key,
  the group's episode (when it was opened) and the notification's sequence number within it:
  a delivery retried with the same notification carries the same key and can be dropped by the
  receiver; a repeat (``repeat_interval``) is a new notification with a new key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.alert import Alert, AlertStatus
from schemas.cases import Silence
from services.alerts.notify.snapshot import GroupSnapshot
from services.alerts.rules.models import Digest, Routing

__all__ = ["Notification", "Notifier", "matches"]


@dataclass(frozen=True)
class Notification:
    receiver: str
    group_key: str
    status: AlertStatus  # firing if any alert in the notification fires
    alerts: tuple[Alert, ...]
    idempotency_key: str
    group_labels: Mapping[str, str] = field(default_factory=dict)
    digest: bool = False
    sequence: int = 0  # position within the group's episode (0 = first notification)
    repeat: bool = False  # nothing changed since the last one: re-sent after repeat_interval
    escalation: Mapping[str, str] | None = None  # an SLA breach of a case (see notify.escalation)

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.firing)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.resolved)


def matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """All matchers hold (label -> exact value); a missing label matches only ''."""
    return all(labels.get(k, "") == v for k, v in matchers.items())


@dataclass(frozen=True, slots=True)
class _Route:
    route_id: str
    match: dict[str, str]
    receiver: str
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool


@dataclass(slots=True)
class _Group:
    key: str
    route: _Route
    labels: dict[str, str]
    opened_at: datetime
    next_look: datetime
    alerts: dict[str, Alert] = field(default_factory=dict)  # alert_id -> latest state
    notified: bool = False
    last_sent_at: datetime | None = None
    sent_firing: frozenset[str] = frozenset()  # alert ids in the last notification's firing set
    told_firing: set[str] = field(default_factory=set)  # alert ids notified as firing
    seq: int = 0


def _compile(routing: Routing) -> tuple[list[_Route], _Route]:
    d = routing.default
    default = _Route("default", {}, d.receiver, tuple(d.group_by), d.group_wait, d.group_interval,
                     d.repeat_interval, False)
    routes = []
    for i, r in enumerate(routing.routes):
        routes.append(_Route(
            r.name or f"route{i}", dict(r.match), r.receiver,
            tuple(r.group_by) if r.group_by is not None else default.group_by,
            r.group_wait if r.group_wait is not None else d.group_wait,
            r.group_interval if r.group_interval is not None else d.group_interval,
            r.repeat_interval if r.repeat_interval is not None else d.repeat_interval,
            r.continue_,
        ))
    return routes, default


def _digest_next(digest: Digest, after: datetime) -> datetime:
    """The first digest time strictly after ``after``."""
    tz = ZoneInfo(digest.timezone)
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), digest.at, tzinfo=tz)
    while candidate <= local:
        candidate = datetime.combine(candidate.date() + timedelta(days=1), digest.at, tzinfo=tz)
    return candidate


class Notifier:
    def __init__(self, routing: Routing) -> None:
        self._routing = routing
        self._routes, self._default = _compile(routing)
        self._alerts: dict[str, Alert] = {}  # fingerprint -> latest state (firing or resolved)
        self._groups: dict[str, _Group] = {}
        self._silences: dict[str, Silence] = {}
        self._history: dict[str, Alert] = {}  # alert_id -> latest state, for digests
        self._digest_next: dict[str, datetime] = {}
        self._digest_marks: dict[str, datetime] = {}  # digest name -> time handled, since take_digest_marks
        self._forgot_at: datetime | None = None
        self._changed: set[str] = set()  # group keys changed since take_changes (to persist)
        self._expired: list[str] = []  # silences expired since take_changes

    # ---------------------------------------------------------------- routing

    def routes_for(self, labels: Mapping[str, str]) -> list[_Route]:
        out = []
        for route in self._routes:
            if matches(route.match, labels):
                out.append(route)
                if not route.continue_:
                    return out
        return out or [self._default]

    def _group_of(self, route: _Route, alert: Alert) -> tuple[str, dict[str, str]]:
        labels = alert.labels
        if route.group_by == ("...",):
            glabels = dict(sorted(labels.items()))
        else:
            glabels = {k: labels.get(k, "") for k in route.group_by}
        inner = ",".join(f'{k}="{v}"' for k, v in glabels.items())
        return f"{route.receiver}/{route.route_id}:{{{inner}}}", glabels

    # ---------------------------------------------------------------- input

    def receive(self, alert: Alert, now: datetime) -> None:
        fp = alert.fingerprint
        past = self._history.get(alert.alert_id)
        if past is not None and past.status is AlertStatus.resolved:
            return  # resolved is final for an alert_id (a redelivered firing changes nothing)
        known = self._alerts.get(fp)
        if known is not None:
            if known.alert_id == alert.alert_id and known.status is alert.status:
                return  # duplicate
            if known.alert_id == alert.alert_id and known.status is AlertStatus.resolved:
                return  # a stale "firing" after the resolution: resolved is final for an alert_id
            if known.alert_id != alert.alert_id and alert.starts_at < known.starts_at:
                return  # an older episode of this condition arriving late
        elif alert.status is AlertStatus.resolved:
            self._history[alert.alert_id] = alert
            return  # never seen firing: nothing to resolve (no orphan resolved)
        if known is not None and known.alert_id != alert.alert_id and known.status is AlertStatus.firing:
            # A new episode of the condition without the old one's resolution: the old one
            # ends where the new one starts.
            ended = known.model_copy(update={"status": AlertStatus.resolved,
                                             "ends_at": max(alert.starts_at, known.starts_at)})
            self._place(ended, now)
        self._alerts[fp] = alert
        self._place(alert, now)

    def _place(self, alert: Alert, now: datetime) -> None:
        self._history[alert.alert_id] = alert
        for route in self.routes_for(alert.labels):
            key, glabels = self._group_of(route, alert)
            group = self._groups.get(key)
            if group is None:
                if alert.status is AlertStatus.resolved:
                    continue
                group = _Group(key=key, route=route, labels=glabels, opened_at=now,
                               next_look=now + route.group_wait)
                self._groups[key] = group
            elif alert.status is AlertStatus.resolved and alert.alert_id not in group.alerts:
                continue
            group.alerts[alert.alert_id] = alert
            self._changed.add(key)

    # ---------------------------------------------------------------- silences

    def add_silence(self, silence: Silence) -> None:
        self._silences[silence.silence_id] = silence

    def remove_silence(self, silence_id: str) -> bool:
        return self._silences.pop(silence_id, None) is not None

    def silences(self) -> list[Silence]:
        """Silences not yet expired (as of the last :meth:`due`), active or scheduled."""
        return list(self._silences.values())

    def silenced(self, labels: Mapping[str, str], now: datetime) -> Silence | None:
        for s in self._silences.values():
            if s.starts_at <= now < s.ends_at and matches(s.matchers, labels):
                return s
        return None

    def update_routing(self, routing: Routing) -> None:
        """New routes, timings, inhibit rules and digests. Groups whose key still exists keep
        their state (and take the new timings); alerts are re-routed; groups no longer reached
        are dropped without a notification."""
        self._routing = routing
        self._routes, self._default = _compile(routing)
        old = self._groups
        self._groups = {}
        # every alert a group still holds (incl. resolutions not yet sent), latest state first
        alerts = {a.alert_id: a for g in old.values() for a in g.alerts.values()}
        alerts.update({a.alert_id: a for a in self._alerts.values()})
        for alert in alerts.values():
            for route in self.routes_for(alert.labels):
                key, glabels = self._group_of(route, alert)
                group = self._groups.get(key)
                if group is None:
                    prev = old.get(key)
                    if prev is not None:
                        group = prev
                        group.route = route
                        group.alerts = {}
                    elif alert.status is AlertStatus.resolved:
                        continue
                    else:
                        group = _Group(key=key, route=route, labels=glabels, opened_at=alert.starts_at,
                                       next_look=alert.starts_at + route.group_wait)
                    self._groups[key] = group
                if alert.status is AlertStatus.resolved and alert.alert_id not in group.told_firing:
                    continue
                group.alerts[alert.alert_id] = alert
        for key in [k for k, g in self._groups.items() if not g.alerts]:
            del self._groups[key]
        self._changed.update(old, self._groups)
        self._digest_next = {k: v for k, v in self._digest_next.items()
                             if any(d.name == k for d in routing.digests)}

    # ---------------------------------------------------------------- inhibition

    def _inhibitors(self) -> list[tuple[dict[str, str], list[str], dict[tuple[str, ...], set[str]]]]:
        """Per inhibit rule: target matchers, equal labels, and the equal-label values of the
        firing source alerts (-> their fingerprints)."""
        out = []
        firing = [a for a in self._alerts.values() if a.status is AlertStatus.firing]
        for rule in self._routing.inhibit:
            sources: dict[tuple[str, ...], set[str]] = {}
            for a in firing:
                if matches(rule.source, a.labels):
                    sources.setdefault(tuple(a.labels.get(k, "") for k in rule.equal), set()).add(
                        a.fingerprint)
            if sources:
                out.append((dict(rule.target), list(rule.equal), sources))
        return out

    @staticmethod
    def _inhibited(alert: Alert, inhibitors: list) -> bool:  # type: ignore[type-arg]
        for target, equal, sources in inhibitors:
            if matches(target, alert.labels):
                fps = sources.get(tuple(alert.labels.get(k, "") for k in equal))
                if fps and (len(fps) > 1 or alert.fingerprint not in fps):
                    return True
        return False

    def muted(self, alert: Alert, now: datetime) -> bool:
        """Silenced or inhibited now."""
        return self.silenced(alert.labels, now) is not None or self._inhibited(alert, self._inhibitors())

    # ---------------------------------------------------------------- output

    def due(self, now: datetime) -> list[Notification]:
        for sid in [sid for sid, s in self._silences.items() if s.ends_at <= now]:
            del self._silences[sid]
            self._expired.append(sid)
        out: list[Notification] = []
        looking = [g for g in self._groups.values() if g.next_look <= now]
        if looking:
            inhibitors = self._inhibitors()
            for group in looking:
                n = self._look(group, now, inhibitors)
                if n is not None:
                    out.append(n)
        out += self._digests(now)
        if self._forgot_at is None or now - self._forgot_at >= timedelta(minutes=1):
            self._forgot_at = now
            self._forget(now)
        return out

    def _look(self, group: _Group, now: datetime, inhibitors: list) -> Notification | None:  # type: ignore[type-arg]
        route = group.route
        group.next_look = now + route.group_interval
        firing: list[Alert] = []
        resolved: list[Alert] = []
        for aid, a in list(group.alerts.items()):
            if a.status is AlertStatus.firing:
                if self.silenced(a.labels, now) is None and not self._inhibited(a, inhibitors):
                    firing.append(a)
            elif aid in group.told_firing:
                resolved.append(a)
            else:
                del group.alerts[aid]  # resolved before the receiver heard of it
                self._changed.add(group.key)
        firing_ids = frozenset(a.alert_id for a in firing)
        send = repeat = False
        if firing and not firing_ids <= group.sent_firing:
            send = True  # alerts the receiver was not told about
        elif resolved:
            send = True
        elif firing and group.last_sent_at is not None \
                and now - group.last_sent_at >= route.repeat_interval:
            send = repeat = True
        notification = None
        if send:
            alerts = tuple(sorted(firing, key=lambda a: (a.starts_at, a.fingerprint))) + tuple(
                sorted(resolved, key=lambda a: (a.ends_at or a.starts_at, a.fingerprint)))
            status = AlertStatus.firing if firing else AlertStatus.resolved
            notification = Notification(
                receiver=route.receiver, group_key=group.key, status=status, alerts=alerts,
                idempotency_key=_idempotency_key(route.receiver, group.key, group.opened_at, group.seq),
                group_labels=dict(group.labels), sequence=group.seq, repeat=repeat,
            )
            group.seq += 1
            self._changed.add(group.key)
            group.notified = True
            group.last_sent_at = now
            group.sent_firing = firing_ids
            group.told_firing.update(a.alert_id for a in firing)
            for a in resolved:
                group.told_firing.discard(a.alert_id)
                del group.alerts[a.alert_id]
        # Left in the group now: firing alerts only (muted or not). None left: every alert
        # resolved and the resolution sent (or never owed): the episode is over.
        if not group.alerts:
            del self._groups[group.key]
            self._changed.add(group.key)
        return notification

    def _digests(self, now: datetime) -> list[Notification]:
        out = []
        for digest in self._routing.digests:
            nxt = self._digest_next.get(digest.name)
            if nxt is None:
                self._digest_next[digest.name] = _digest_next(digest, now)
                continue
            if now < nxt:
                continue
            self._digest_next[digest.name] = _digest_next(digest, now)
            self._digest_marks[digest.name] = nxt
            since = nxt - timedelta(days=1)
            alerts = [a for a in self._history.values()
                      if matches(digest.match, a.labels) and a.starts_at <= nxt
                      and (a.ends_at is None or a.ends_at > since)]
            if not alerts:
                continue
            alerts.sort(key=lambda a: (a.starts_at, a.alert_id))
            key = f"digest/{digest.name}:{nxt.date().isoformat()}"
            status = AlertStatus.firing if any(a.status is AlertStatus.firing for a in alerts) \
                else AlertStatus.resolved
            out.append(Notification(
                receiver=digest.receiver, group_key=key, status=status, alerts=tuple(alerts),
                idempotency_key=_idempotency_key(digest.receiver, key, nxt, 0),
                group_labels={"digest": digest.name}, digest=True,
            ))
        return out

    def _forget(self, now: datetime) -> None:
        """Drop what no group needs any more: resolved alerts outside every group, and digest
        history older than two days."""
        grouped = {aid for g in self._groups.values() for aid in g.alerts}
        for fp in [fp for fp, a in self._alerts.items()
                   if a.status is AlertStatus.resolved and a.alert_id not in grouped]:
            del self._alerts[fp]
        horizon = now - timedelta(days=2)
        for aid in [aid for aid, a in self._history.items()
                    if a.ends_at is not None and a.ends_at < horizon]:
            del self._history[aid]

    # ---------------------------------------------------------------- introspection

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Group key -> fingerprints in it (for the API and tests)."""
        return {k: tuple(g.alerts) for k, g in self._groups.items()}

    # ---------------------------------------------------------------- durable state

    def take_changes(self) -> tuple[dict[str, GroupSnapshot | None], list[str]]:
        """Groups changed since the last call (None: the group ended) and silences that
        expired, for the caller to persist; pure bookkeeping, nothing is written here."""
        groups = {k: _snapshot(self._groups[k]) if k in self._groups else None for k in self._changed}
        expired, self._expired = self._expired, []
        self._changed.clear()
        return groups, expired

    def take_digest_marks(self) -> dict[str, datetime]:
        """Digest name -> the digest time last handled (sent, or nothing to send), since the
        last call, for the caller to persist."""
        marks, self._digest_marks = self._digest_marks, {}
        return marks

    def restore_digests(self, marks: Mapping[str, datetime]) -> int:
        """Digest times handled before a restart or hand-over: each digest's next time follows
        its mark (a time already past is due at the next `due`). Returns how many were taken."""
        taken = 0
        for digest in self._routing.digests:
            mark = marks.get(digest.name)
            if mark is not None:
                self._digest_next[digest.name] = _digest_next(digest, mark)
                taken += 1
        return taken

    def restore(self, groups: Iterable[GroupSnapshot]) -> list[str]:
        """Groups persisted before a restart, on the current routing. A group whose route is
        gone (or now goes elsewhere) is dropped, as a reload would; returns the keys kept."""
        routes = {r.route_id: r for r in (*self._routes, self._default)}
        kept = []
        for snap in groups:
            route = routes.get(snap.route_id)
            if route is None or route.receiver != snap.receiver or not snap.alerts:
                continue
            self._groups[snap.key] = _Group(
                key=snap.key, route=route, labels=dict(snap.labels), opened_at=snap.opened_at,
                next_look=snap.next_look, alerts={a.alert_id: a for a in snap.alerts}, notified=snap.notified,
                last_sent_at=snap.last_sent_at, sent_firing=frozenset(snap.sent_firing),
                told_firing=set(snap.told_firing), seq=snap.seq)
            for alert in snap.alerts:
                self._remember(alert)
            kept.append(snap.key)
        return kept

    def remember_history(self, alerts: Iterable[Alert], now: datetime) -> int:
        """Alerts of the last two days for the digests (a restart or a new notifier knows the
        day so far); nothing is notified for them. Returns how many were taken."""
        horizon = now - timedelta(days=2)
        taken = 0
        for alert in alerts:
            if (alert.ends_at is None or alert.ends_at >= horizon) and alert.alert_id not in self._history:
                self._history[alert.alert_id] = alert
                taken += 1
        return taken

    def release(self) -> None:
        """Forget every group and alert, without reporting the groups as ended: another worker
        notifies now and took them over from the state topic. Silences stay (every worker
        keeps them for its API and cases)."""
        self._groups.clear()
        self._alerts.clear()
        self._history.clear()
        self._digest_next.clear()
        self._digest_marks.clear()
        self._changed.clear()

    def _remember(self, alert: Alert) -> None:
        """Latest state per fingerprint: a firing alert wins over a resolved one, then newer."""
        known = self._alerts.get(alert.fingerprint)
        rank = (alert.status is AlertStatus.firing, alert.starts_at)
        if known is None or rank > (known.status is AlertStatus.firing, known.starts_at):
            self._alerts[alert.fingerprint] = alert
        self._history[alert.alert_id] = alert


def _snapshot(group: _Group) -> GroupSnapshot:
    return GroupSnapshot(
        key=group.key, route_id=group.route.route_id, receiver=group.route.receiver, labels=dict(group.labels),
        opened_at=group.opened_at, next_look=group.next_look, alerts=list(group.alerts.values()),
        notified=group.notified, last_sent_at=group.last_sent_at, sent_firing=sorted(group.sent_firing),
        told_firing=sorted(group.told_firing), seq=group.seq)


def _idempotency_key(receiver: str, group_key: str, opened_at: datetime, seq: int) -> str:
    raw = f"{receiver}|{group_key}|{opened_at.isoformat()}|{seq}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def notify_all(notifier: Notifier, alerts: Iterable[Alert], now: datetime) -> list[Notification]:
    """Receive these alerts and return what is due (a convenience for replays)."""
    for a in alerts:
        notifier.receive(a, now)
    return notifier.due(now)
