"""Churn risk per customer: the customer's negative experiences and stated intent go through
the churn detector; one alert per customer while at risk, resolved after ``resolve.quiet_for``
without a further negative experience, or when the customer's next feedback is a promoter
(``resolve.on_promoter``). An anonymous event that states an intent to leave is followed up
as its own customer ``event:<event id>``."""

from __future__ import annotations

from datetime import datetime

from schemas.alert import Alert
from schemas.scored import NpsCategory, ScoredEvent, SentimentLabel
from services.alerts.detectors import churn
from services.alerts.detectors.decision import Decision
from services.alerts.flows.evidence import churn_alert, resolved
from services.alerts.flows.state import ChurnRuntime, Customer, Ledger
from services.alerts.state.detectors import churn_key


def on_churn(book: Ledger, runtimes: list[ChurnRuntime], scored: ScoredEvent, now: datetime,
             out: list[Alert]) -> None:
    category = scored.nps_category
    text = scored.text
    negative = (
        category is NpsCategory.detractor
        or scored.complaint
        or (text is not None and text.sentiment_label is SentimentLabel.negative)
    )
    promoter = category is NpsCategory.promoter
    for rt in runtimes:
        neg = negative or (scored.csat is not None and scored.csat <= rt.rule.negative_csat_at_most)
        _on_rule(book, rt, scored, neg, promoter, now, out)


def _on_rule(book: Ledger, rt: ChurnRuntime, scored: ScoredEvent, neg: bool, promoter: bool,
             now: datetime, out: list[Alert]) -> None:
    ev = scored.event
    intent = scored.churn_intent
    cid = ev.customer_id
    if cid is None:
        if not (rt.intent and intent and neg):
            return
        cid = f"event:{ev.event_id}"
    cust = rt.customers.get(cid)
    if cust is not None and cust.alert is not None and promoter and not neg \
            and rt.rule.resolve.on_promoter:
        resolve_churn(book, rt, cid, cust, now, "promoter", out)
        return
    if not (neg or intent):
        return  # nothing the detector would count (exact: it only keeps negatives)
    labels = {"touchpoint": ev.touchpoint.value, "unit": ev.unit, "segment": ev.segment,
              "source": ev.source, "customer_id": cid}
    eff = rt.eff(labels)
    if not eff.enabled:
        return
    if cust is None:
        cust = rt.customers[cid] = Customer(state=churn.new_state(cid))
    cfg: churn.ChurnConfig = eff.config  # type: ignore[assignment]
    cust.config = cfg
    decisions = _observe(rt, cust, cfg, scored, cid, neg, now)
    book.changed_churn[rt.name, cid] = cust
    if decisions and cust.alert is None:
        alert = churn_alert(rt.rule, labels, eff.severity, decisions, scored, now)
        cust.alert = alert
        cust.last_negative_at = now
        rt.alerting[cid] = cust
        book.firing[alert.fingerprint] = alert
        out.append(alert)


def _observe(rt: ChurnRuntime, cust: Customer, cfg: churn.ChurnConfig, scored: ScoredEvent,
             cid: str, neg: bool, now: datetime) -> list[Decision]:
    """The event through the customer's detector: the decisions of the rule's signals."""
    ev = scored.event
    category = scored.nps_category
    detractor = None if category is None else category is NpsCategory.detractor
    cev = churn.CustomerEvent(ev.event_id or "", ev.occurred_at, cid, ev.touchpoint.value,
                              neg, scored.churn_intent, detractor)
    cust.state, decisions = churn.update(cfg, cust.state, cev)
    if neg:
        cust.last_negative_at = now
    return [d for d in decisions
            if (d.rule == churn.RULE_INTENT and rt.intent)
            or (d.rule == churn.RULE_REPEATED and rt.repeated)]


def resolve_churn(book: Ledger, rt: ChurnRuntime, cid: str, cust: Customer, now: datetime,
                  reason: str, out: list[Alert]) -> None:
    alert = cust.alert
    assert alert is not None
    cust.alert = None
    rt.alerting.pop(cid, None)
    book.firing.pop(alert.fingerprint, None)
    out.append(resolved(alert, now, reason))


def resolve_quiet(book: Ledger, rt: ChurnRuntime, now: datetime, out: list[Alert]) -> None:
    """Resolve the rule's customers quiet for ``resolve.quiet_for`` (a tick); an anonymous
    event's customer is then forgotten at once."""
    quiet = rt.rule.resolve.quiet_for
    for cid, cust in list(rt.alerting.items()):
        if cust.last_negative_at is not None and now - cust.last_negative_at >= quiet:
            resolve_churn(book, rt, cid, cust, now, "quiet", out)
            if cid.startswith("event:"):
                rt.customers.pop(cid, None)
                book.forgotten.append(churn_key(rt.name, cid))
