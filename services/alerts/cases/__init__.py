"""Alert cases: the event-sourced lifecycle operations teams follow up.

- `model.py`: the pure fold of `CaseEvent`s into a `Case` (state machine with precise errors),
  and `decide`, which turns a lifecycle command into the next event or refuses it.
- `store.py`: the cases in memory (rebuilt from the cases topic at start-up): filters, which
  events an alert change, an overdue SLA or new feedback of a followed-up customer implies
  (closed-loop recovery), and the recovery rate.
- `log.py`: the cases topic (replay at start-up) and the ClickHouse history writer.
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
