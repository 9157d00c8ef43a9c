"""Theme surge per scope: comments are buffered into the scope's windows; when a window closes
(by a later comment or by time on a tick), each surging theme fires once and a firing theme
that no longer surges in a closed window resolves."""

from __future__ import annotations

from datetime import datetime

from schemas.alert import Alert
from services.alerts.detectors import surge
from services.alerts.detectors.decision import Decision
from services.alerts.flows.evidence import resolved, surge_alert
from services.alerts.flows.state import Ledger, SurgeRuntime, SurgeScope


def new_surge_scope(rt: SurgeRuntime, names: tuple[str, ...], key: tuple[str, ...],
                    now: datetime) -> SurgeScope:
    labels = dict(zip(names, key, strict=True))
    scope = SurgeScope(labels=labels, eff=rt.eff(labels), state=surge.new_state(), last_at=now)
    rt.put(names, key, scope)
    return scope


def note_close(rt: SurgeRuntime, scope: SurgeScope) -> None:
    """Keep the rule's earliest window end, so a tick knows when a window closes by time."""
    cur = scope.state.current
    if cur is not None:
        end = cur.start + scope.eff.config.window  # type: ignore[union-attr]
        if rt.next_close is None or end < rt.next_close:
            rt.next_close = end


def close_due_windows(book: Ledger, rt: SurgeRuntime, now: datetime, out: list[Alert]) -> None:
    """Close the rule's windows that ended by `now` (a tick; no traffic needed)."""
    if rt.next_close is not None and now >= rt.next_close:
        rt.next_close = None
        for scope in rt.scopes.values():
            flush_surge(book, rt, scope, now, now, out)


def flush_surge(book: Ledger, rt: SurgeRuntime, scope: SurgeScope, until: datetime | None,
                now: datetime, out: list[Alert]) -> None:
    """Run the buffered comments (and time up to `until`) through the detector; act on every
    window that closed, in order."""
    cfg: surge.SurgeConfig = scope.eff.config  # type: ignore[assignment]
    buf, scope.buf = scope.buf, []
    if buf:
        scope.last_at = now
    book.dirty_surge.pop(id(scope), None)
    before = scope.state.current.start if scope.state.current is not None else None
    state, decisions = surge.update(cfg, scope.state, buf, until)
    scope.state = state
    book.changed_surge[id(scope)] = (rt.name, scope)
    after = state.current.start if state.current is not None else None
    note_close(rt, scope)
    closed = before is not None and after != before
    if not decisions and not closed:
        return
    by_end = _by_window(decisions)
    for end in by_end:
        _apply_window(book, rt, scope, by_end[end], now, out)
    # a closed window without any decision still resolves what no longer surges
    if closed and (not by_end or (after is not None and max(by_end) < after)):
        _apply_window(book, rt, scope, [], now, out)


def _by_window(decisions: list[Decision]) -> dict[datetime, list[Decision]]:
    """Decisions grouped by the end of their window, earliest window first."""
    by_end: dict[datetime, list[Decision]] = {}
    for d in decisions:
        assert d.window_end is not None
        by_end.setdefault(d.window_end, []).append(d)
    return {end: by_end[end] for end in sorted(by_end)}


def _apply_window(book: Ledger, rt: SurgeRuntime, scope: SurgeScope, decisions: list[Decision],
                  now: datetime, out: list[Alert]) -> None:
    surging = {str(d.subject): d for d in decisions}
    for theme in [t for t in scope.alerts if t not in surging]:
        alert = scope.alerts.pop(theme)
        book.firing.pop(alert.fingerprint, None)
        out.append(resolved(alert, now, "window closed without surge"))
    for theme, d in surging.items():
        if theme in scope.alerts:
            continue
        alert = surge_alert(rt.rule, scope.labels, scope.eff.severity, theme, d, now)
        scope.alerts[theme] = alert
        book.firing[alert.fingerprint] = alert
        out.append(alert)
