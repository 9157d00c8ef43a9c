"""Drop-detector state on the state topic: one ``detector/drop/<rule>/<scope key>`` record per
rule and scope (its learned baseline, CUSUM statistic, open block and window, waiting blocks,
and the observations buffered but not yet run through the detector).

A record carries the detector version it was written by. The state layout belongs to the
major version (``detectors-<major>.<minor>.<patch>``): a record of another major version is
ignored (logged) and that scope learns its baseline again. The rule's configuration at the
time is kept too: under a changed configuration the learned baseline is kept and the CUSUM
weights and threshold are derived again (as a rules reload does).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from services.alerts.detectors import churn, drop, surge
from services.alerts.detectors.version import DETECTOR_VERSION
from services.alerts.repartition import level_key

log = logging.getLogger("ksp.alerts.state")

Buffered = tuple[str, datetime | None, float]


class DropStateModel(BaseModel):
    """:class:`~services.alerts.detectors.drop.DropState` as JSON (``h`` None: not yet derived)."""

    n_seen: int
    base: list[float]
    base_w2: float
    active: bool
    weights: list[float]
    h: float | None
    block: list[float]
    block_len: int
    pending: list[tuple[int, list[float]]]
    s: float
    win: list[float]
    win_n: int
    win_start: datetime | None
    win_end: datetime | None
    examples: list[str]
    alarms: int

    @classmethod
    def of(cls, st: drop.DropState) -> DropStateModel:
        return cls(n_seen=st.n_seen, base=list(st.base), base_w2=st.base_w2, active=st.active,
                   weights=list(st.weights), h=None if math.isinf(st.h) else st.h, block=list(st.block),
                   block_len=st.block_len, pending=[(n, list(c)) for n, c in st.pending], s=st.s,
                   win=list(st.win), win_n=st.win_n, win_start=st.win_start, win_end=st.win_end,
                   examples=list(st.examples), alarms=st.alarms)

    def state(self) -> drop.DropState:
        return drop.DropState(
            n_seen=self.n_seen, base=list(self.base), base_w2=self.base_w2, active=self.active,
            weights=tuple(self.weights), h=math.inf if self.h is None else self.h, block=list(self.block),
            block_len=self.block_len, pending=[(n, tuple(c)) for n, c in self.pending], s=self.s,
            win=list(self.win), win_n=self.win_n, win_start=self.win_start, win_end=self.win_end,
            examples=list(self.examples), alarms=self.alarms)


class DropSnapshot(BaseModel):
    kind: Literal["detector"] = "detector"
    detector: Literal["drop"] = "drop"
    detector_version: str = Field(description="DETECTOR_VERSION of the writer; its major version "
                                  "must match the reader's, or the record is ignored.")
    worker_id: str = Field(description="The worker that wrote it (for operators; not an owner).")
    rule: str
    level: list[str] = Field(description="The scope level's label names.")
    values: list[str] = Field(description="The scope's label values at that level.")
    config: dict[str, Any] = Field(description="The rule's DropConfig when it was written.")
    # raw until the version is checked: another major version may have another layout
    state: dict[str, Any]
    buffered: list[Buffered] = Field(default_factory=list)
    last_at: datetime | None = Field(None, description="When the scope last saw feedback; a record "
                                     "idle for the eviction age is tombstoned, not restored "
                                     "(None: written by an older version, taken as now).")

    def key(self) -> str:
        return detector_key(self.rule, tuple(self.level), tuple(self.values))

    def drop_state(self) -> drop.DropState | None:
        """The detector state, or None (logged) when written by an incompatible version."""
        if not _readable("detector state", self.key(), self.detector_version):
            return None
        try:
            return DropStateModel.model_validate(self.state).state()
        except ValidationError as exc:
            log.warning("detector state %s ignored: unreadable (%s)", self.key(), exc.error_count())
            return None


def detector_key(rule: str, level: tuple[str, ...], values: tuple[str, ...]) -> str:
    """The record's key; the scope part is the by-scope partition key (repartition.level_key)."""
    return f"detector/drop/{rule}/{level_key(level, values).decode()}"


def snapshot(rule: str, level: tuple[str, ...], values: tuple[str, ...], config: drop.DropConfig,
             state: drop.DropState, buffered: Sequence[Buffered], worker_id: str,
             last_at: datetime | None = None) -> DropSnapshot:
    return DropSnapshot(detector_version=DETECTOR_VERSION, worker_id=worker_id, rule=rule,
                        level=list(level), values=list(values), config=dataclasses.asdict(config),
                        state=DropStateModel.of(state).model_dump(mode="json"),
                        buffered=[(e, at, float(v)) for e, at, v in buffered], last_at=last_at)


def same_config(record: DropSnapshot, config: drop.DropConfig) -> bool:
    return record.config == dataclasses.asdict(config)


def _readable(what: str, key: str, version: str) -> bool:
    """Whether a record written by detectors `version` can be read here (same major version);
    logs why not: another major version may have another layout, so that state is learned again."""
    if _major(version) == _major(DETECTOR_VERSION):
        return True
    log.warning("%s %s ignored: written by %s, this is %s (learned again)", what, key, version, DETECTOR_VERSION)
    return False


def _major(version: str) -> str:
    return version.rsplit("-", 1)[-1].split(".", 1)[0]


class ChurnSnapshot(BaseModel):
    """A customer's churn history under one rule: the negative experiences in the window, the
    event ids seen (de-duplication) and when each signal last fired (cooldown), so a restart or
    a rebalance neither forgets "repeated negative experiences" nor alerts again in cooldown."""

    kind: Literal["churn_history"] = "churn_history"
    detector_version: str
    worker_id: str = Field(description="The worker that wrote it (for operators; not an owner).")
    rule: str
    customer_id: str
    negatives: list[tuple[datetime, str, str]] = Field(description="(at, event id, touchpoint)")
    seen_ids: list[str]
    last_fired: dict[str, datetime]
    last_negative_at: datetime | None = None

    def key(self) -> str:
        return churn_key(self.rule, self.customer_id)

    def churn_state(self) -> churn.ChurnState | None:
        """The detector state, or None (logged) when written by an incompatible version."""
        if not _readable("churn history", self.key(), self.detector_version):
            return None
        return churn.ChurnState(self.customer_id, list(self.negatives), list(self.seen_ids),
                                dict(self.last_fired))


def churn_key(rule: str, customer_id: str) -> str:
    return f"detector/churn/{rule}/{customer_id}"


def churn_snapshot(rule: str, state: churn.ChurnState, last_negative_at: datetime | None,
                   worker_id: str) -> ChurnSnapshot:
    return ChurnSnapshot(detector_version=DETECTOR_VERSION, worker_id=worker_id, rule=rule,
                         customer_id=state.customer_id, negatives=list(state.negatives),
                         seen_ids=list(state.seen_ids), last_fired=dict(state.last_fired),
                         last_negative_at=last_negative_at)


class WindowModel(BaseModel):
    start: datetime
    negatives: int
    themes: dict[str, int]


class SurgeSnapshot(BaseModel):
    """A scope's theme-surge windows under one rule: the open window with its example ids, the
    closed windows the baseline is made of, and the comments buffered but not yet run, so a
    restart or a rebalance does not leave the scope without a baseline for `baseline_windows`."""

    kind: Literal["surge_windows"] = "surge_windows"
    detector_version: str
    worker_id: str = Field(description="The worker that wrote it (for operators; not an owner).")
    rule: str
    level: list[str]
    values: list[str]
    current: WindowModel | None
    examples: dict[str, list[str]]
    history: list[WindowModel]
    buffered: list[tuple[str, datetime, bool, list[str]]] = Field(default_factory=list)
    last_at: datetime | None = None

    def key(self) -> str:
        return surge_key(self.rule, tuple(self.level), tuple(self.values))

    def surge_state(self) -> surge.SurgeState | None:
        """The detector state, or None (logged) when written by an incompatible version."""
        if not _readable("surge windows", self.key(), self.detector_version):
            return None
        return surge.SurgeState(current=_window(self.current), examples={k: list(v) for k, v in self.examples.items()},
                                history=[w for w in map(_window, self.history) if w is not None])

    def comments(self) -> list[surge.CommentObservation]:
        return [surge.CommentObservation(e, at, neg, tuple(themes)) for e, at, neg, themes in self.buffered]


def _window(model: WindowModel | None) -> surge.WindowCounts | None:
    return None if model is None else surge.WindowCounts(model.start, model.negatives, dict(model.themes))


def _model(window: surge.WindowCounts | None) -> WindowModel | None:
    return None if window is None else WindowModel(start=window.start, negatives=window.negatives,
                                                    themes=dict(window.themes))


def surge_key(rule: str, level: tuple[str, ...], values: tuple[str, ...]) -> str:
    return f"detector/surge/{rule}/{level_key(level, values).decode()}"


def surge_snapshot(rule: str, level: tuple[str, ...], values: tuple[str, ...], state: surge.SurgeState,
                   buffered: Sequence[surge.CommentObservation], last_at: datetime | None,
                   worker_id: str) -> SurgeSnapshot:
    history = [m for m in map(_model, state.history) if m is not None]
    return SurgeSnapshot(detector_version=DETECTOR_VERSION, worker_id=worker_id, rule=rule, level=list(level),
                         values=list(values), current=_model(state.current),
                         examples={k: list(v) for k, v in state.examples.items()}, history=history,
                         buffered=[(c.event_id, c.at, c.negative, list(c.themes)) for c in buffered],
                         last_at=last_at)
