"""The case state machine: a pure fold of case events, and the commands people give.

    opened ──> firing ──acknowledged──> acknowledged ──assigned──> assigned ──resolved──> resolved
                  │ └────────────assigned──────────────────────────^   │ (re-assign)
                  └──────────────────────resolved (any open state)──────────────────────^

* `acknowledged` only from `firing`; `assigned` from any open state (re-assigning is allowed);
  `resolved` from any open state, with an outcome; `commented` in every state, resolved too.
* `condition_cleared` (the detector says the condition is gone) keeps the state and sets a flag;
  `escalated` (SLA ran out) and `silenced` only while open; `recovered` (closed loop) once per
  case, open or resolved.
* Anything else raises `InvalidTransition` (HTTP 409) naming the case, its state and the
  action; a command missing what it needs raises `InvalidCommand` (HTTP 422).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.cases import Case, CaseAction, CaseCommand, CaseEvent, CaseState, Outcome

OPEN_STATES = frozenset({CaseState.firing, CaseState.acknowledged, CaseState.assigned})


class CaseError(Exception):
    status = 409
    slug = "invalid-transition"

    def __init__(self, detail: str, case_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.case_id = case_id


class CaseNotFound(CaseError):
    status = 404
    slug = "not-found"


class InvalidTransition(CaseError):
    status = 409
    slug = "invalid-transition"


class InvalidCommand(CaseError):
    status = 422
    slug = "invalid-command"


def _due_at(event: CaseEvent) -> datetime | None:
    raw = event.details.get("due_at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


_VERB = {CaseAction.opened: "open", CaseAction.acknowledged: "acknowledge", CaseAction.assigned: "assign",
         CaseAction.commented: "comment on", CaseAction.resolved: "resolve",
         CaseAction.condition_cleared: "clear the condition of", CaseAction.escalated: "escalate",
         CaseAction.silenced: "silence", CaseAction.recovered: "record the recovery of"}


def _refuse(case: Case, event: CaseEvent, why: str) -> InvalidTransition:
    return InvalidTransition(
        f"case {case.case_id} is {case.state.value}: cannot {_VERB[event.action]} it ({why})", case.case_id)


def apply(case: Case | None, event: CaseEvent) -> Case:
    """The case after `event`; raises InvalidTransition when the event is not allowed."""
    if case is None:
        if event.action is not CaseAction.opened or event.alert is None:
            raise InvalidTransition(f"case {event.case_id} does not exist: its first event must be "
                                    f"'opened' with the alert, not {event.action.value!r}", event.case_id)
        if event.sequence != 0:
            raise InvalidTransition(f"case {event.case_id}: 'opened' must be event 0, not {event.sequence}",
                                    event.case_id)
        return Case(case_id=event.case_id, alert=event.alert, state=CaseState.firing,
                    opened_at=event.at, updated_at=event.at, due_at=_due_at(event), history=[event])
    if event.case_id != case.case_id:
        raise InvalidTransition(f"event of case {event.case_id} applied to case {case.case_id}", case.case_id)
    if event.sequence != len(case.history):
        raise InvalidTransition(f"case {case.case_id}: expected event {len(case.history)}, got "
                                f"{event.sequence} (a concurrent change? reload and retry)", case.case_id)
    action = event.action
    changes: dict[str, object] = {}
    is_open = case.state in OPEN_STATES
    if action is CaseAction.opened:
        raise _refuse(case, event, "it is already open")
    elif action is CaseAction.acknowledged:
        if case.state is not CaseState.firing:
            raise _refuse(case, event, "only a firing case can be acknowledged"
                          if is_open else "it is resolved")
        changes["state"] = CaseState.acknowledged
    elif action is CaseAction.assigned:
        if not is_open:
            raise _refuse(case, event, "it is resolved")
        if not event.assignee:
            raise InvalidCommand(f"case {case.case_id}: assigning needs an `assignee`", case.case_id)
        changes.update(state=CaseState.assigned, assignee=event.assignee)
    elif action is CaseAction.resolved:
        if not is_open:
            raise _refuse(case, event, f"it is already resolved with outcome "
                          f"{case.outcome.value if case.outcome else 'none'}")
        if event.outcome is None:
            raise InvalidCommand(f"case {case.case_id}: resolving needs an `outcome` (one of "
                                 f"{', '.join(o.value for o in Outcome)})", case.case_id)
        changes.update(state=CaseState.resolved, outcome=event.outcome)
    elif action is CaseAction.commented:
        if not event.note:
            raise InvalidCommand(f"case {case.case_id}: a comment needs a `note`", case.case_id)
    elif action is CaseAction.condition_cleared:
        if case.condition_cleared:
            raise _refuse(case, event, "its condition already cleared")
        changes["condition_cleared"] = True
        if event.alert is not None:
            changes["alert"] = event.alert
    elif action is CaseAction.escalated:
        if not is_open:
            raise _refuse(case, event, "it is resolved")
        if case.escalated:
            raise _refuse(case, event, "it is already escalated")
        changes["escalated"] = True
    elif action is CaseAction.silenced:
        if not is_open:
            raise _refuse(case, event, "it is resolved")
    elif action is CaseAction.recovered:
        if case.recovered is not None:
            raise _refuse(case, event, "its recovery is already recorded")
        value = event.details.get("recovered")
        if value not in (0, 1, 0.0, 1.0):
            raise InvalidCommand(f"case {case.case_id}: 'recovered' needs details.recovered 1 or 0",
                                 case.case_id)
        changes["recovered"] = bool(value)
    else:  # pragma: no cover - exhaustive over CaseAction
        raise _refuse(case, event, "unknown action")
    return case.model_copy(update={**changes, "updated_at": max(case.updated_at, event.at),
                                   "history": [*case.history, event]})


def fold(events: Iterable[CaseEvent]) -> Case:
    """The case its events describe (in sequence order)."""
    case: Case | None = None
    for event in sorted(events, key=lambda e: e.sequence):
        case = apply(case, event)
    if case is None:
        raise CaseNotFound("no events")
    return case


COMMANDS = {
    "acknowledge": CaseAction.acknowledged,
    "assign": CaseAction.assigned,
    "resolve": CaseAction.resolved,
    "comments": CaseAction.commented,
    "comment": CaseAction.commented,
}


def decide(case: Case, command_name: str, command: CaseCommand, now: datetime) -> CaseEvent:
    """The event a lifecycle command adds to `case`, validated by `apply` (raises if refused)."""
    action = COMMANDS.get(command_name)
    if action is None:
        raise CaseNotFound(f"unknown case command {command_name!r}", case.case_id)
    event = CaseEvent(case_id=case.case_id, sequence=len(case.history), action=action, at=now,
                      by=command.by, assignee=command.assignee if action is CaseAction.assigned else None,
                      outcome=command.outcome if action is CaseAction.resolved else None, note=command.note)
    apply(case, event)  # raises InvalidTransition / InvalidCommand
    return event
