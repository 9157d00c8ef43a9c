"""Alert cases: the event-sourced lifecycle operations teams follow up.

- `model.py`: the pure fold of `CaseEvent`s into a `Case` (state machine with precise errors),
  and `decide`, which turns a lifecycle command into the next event or refuses it.
- `store.py`: the cases in memory with their indexes (fed by the cases table): filters, which
  events an alert change, an overdue SLA or new feedback of a followed-up customer implies
  (closed-loop recovery), and the recovery rate.
- `table.py`: the Faust table that keeps every case for every worker (one record per case).
- `log.py`: the cases topic (the event log; replayed into an empty table) and the ClickHouse
  history writer.
"""

from services.alerts.cases.model import (
    CaseError,
    CaseNotFound,
    InvalidCommand,
    InvalidTransition,
    apply,
    decide,
    fold,
)
from services.alerts.cases.store import CaseStore

__all__ = ["CaseError", "CaseNotFound", "CaseStore", "InvalidCommand", "InvalidTransition", "apply",
           "decide", "fold"]
