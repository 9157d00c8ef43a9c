"""Scored events -> alerts: the rules applied per scope with the detectors. Pure (time passed in).

:class:`AlertEvaluator` keeps one detector state per rule and scope (aggregate drop, theme
surge) or per rule and customer (churn risk) and turns the detectors' decisions into
``schemas.alert.Alert`` state changes:

* a condition that starts firing gives one ``firing`` alert; while it fires, further detector
  decisions for it change nothing (a lasting drop re-alarms about every detection delay, a churn
  detector may fire both of its signals: one alert);
* the alert is emitted once more, ``resolved`` with ``ends_at``, when the condition clears:

  - aggregate drop: no new alarm for ``resolve.quiet_n`` responses of the scope or for
    ``resolve.quiet_for``, and the CUSUM statistic at most ``resolve.reset_fraction`` of its
    threshold (the detector restarts the statistic at 0 after an alarm, so a drop that persists
    alarms again; one that is over stays quiet);
  - theme surge: a later window of the scope closes without that theme surging;
  - churn risk: ``resolve.quiet_for`` without a further negative experience of the customer, or
    the customer's next feedback is a promoter (``resolve.on_promoter``);
  - the rule is removed or disabled for the scope by a reload (emitted by the next ``on_tick``).

Identity: ``fingerprint`` = hash of the rule name and the scope's identity labels, stable across
restarts and reloads; ``alert_id`` = fingerprint + start time (ms) (see :mod:`.evidence`).

Cost: ``on_scored`` only appends the event's values to small per-scope buffers; a buffer goes
through the detector when it holds ``batch_size`` observations, at once while the scope's
CUSUM statistic is elevated (above half its threshold, where an alarm may be near), and on the
first ``on_tick`` after its oldest observation waited ``max_delay`` (default 30 s; ``flush``
forces all). Detector updates are sequential, so batching gives exactly the decisions that
per-event updates would; only their emission may wait up to ``max_delay`` plus a tick, which is
negligible next to the hundreds of responses a drop takes to detect. Alert times:
``starts_at``/``ends_at`` are the ``now`` of the
call that emitted them; the evidence carries the event-time window.

Modules, by concern:

* :mod:`.evaluator`: :class:`AlertEvaluator` (entry points, buffers, ticks, reload) and
  :func:`evaluate_all`;
* :mod:`.drops`, :mod:`.surges`, :mod:`.churn_risk`: detection and alert lifecycle per kind;
* :mod:`.evidence`: fingerprints, alert ids, labels, evidence and summaries (pure);
* :mod:`.state`: per-rule runtimes, per-scope/per-customer state, the shared ledger;
* :mod:`.reload`: rules -> runtimes and what a reload keeps;
* :mod:`.ownership`: firing alerts taken over (restart, rebalance) and state evicted;
* :mod:`.sweep`: idle-state eviction, a slice per tick.
"""

from services.alerts.flows.drops import HOT_FRACTION
from services.alerts.flows.evaluator import BATCH_SIZE, MAX_DELAY, AlertEvaluator, evaluate_all
from services.alerts.flows.evidence import alert_id, fingerprint
from services.alerts.flows.sweep import DROP_EVICT_AFTER, SWEEP_EVERY, SWEEP_SLICE

__all__ = [
    "BATCH_SIZE",
    "DROP_EVICT_AFTER",
    "HOT_FRACTION",
    "MAX_DELAY",
    "SWEEP_EVERY",
    "SWEEP_SLICE",
    "AlertEvaluator",
    "alert_id",
    "evaluate_all",
    "fingerprint",
]
