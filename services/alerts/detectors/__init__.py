"""Alert detectors: pure functions over explicit, per-scope state.

* :mod:`.drop`  -- aggregate drop (NPS, detractor share, CSAT top box, mean score): CUSUM
  against a learned, drag-resistant baseline.
* :mod:`.surge` -- theme surge: a theme's share of negative comments rising significantly.
* :mod:`.churn` -- individual churn risk for one customer.
* :mod:`.simulate` -- the benchmark behind the aggregate-drop promise.

No detector does I/O or reads a clock: time comes in with the events (or as ``now``), and all
memory is in small dataclasses the streaming agent keeps per scope and a backtest can replay.
Each returns :class:`Decision` objects; the alerts service turns them into ``Alert``\\ s.
"""

from .decision import Decision
from .version import DETECTOR_VERSION

__all__ = ["DETECTOR_VERSION", "Decision"]
