"""The ops console in headless Chromium against the real stack (ingest, scoring, alerts).

Each step saves a screenshot under tests/artifacts/console/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import Stack, browser_missing, feedback

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))]

CHURN_DE = "Ich kündige meinen Vertrag, der Service war eine Katastrophe."
CHURN_EN = "I am cancelling my contract, nobody answered the phone for an hour."
WAIT_MS = 60_000


def wait_case(stack: Stack, customer: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cases = stack.api(f"/v1/alerts?customer_id={customer}")["cases"]
        if cases:
            return cases[0]
        time.sleep(0.3)
    raise AssertionError(f"no case for customer {customer} after {timeout:.0f} s")


def settled_state(page: Any, state: str) -> None:
    """The case shows `state` and keeps showing it (no late refresh puts an older state back)."""
    page.wait_for_selector(f"#detail-state[data-state={state}]")
    page.wait_for_timeout(1500)
    assert page.get_attribute("#detail-state", "data-state") == state


def shot(page: Any, shots: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let the toast and charts settle
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def traffic(stack: Stack, unit: str, customer: str) -> list[dict[str, Any]]:
    """Ordinary feedback for one unit plus a detractor who states an intent to leave."""
    comments = ["Sehr freundliche Beratung, alles schnell erledigt.", "Lange Wartezeit an der Kasse.",
                "The bill was wrong again, very annoying.", "Great service, I will recommend you.", None]
    events = [feedback(stack.run, i, unit=unit, touchpoint=["store", "web", "app"][i % 3],
                       nps=[10, 9, 3, 8, 6][i % 5], comment=comments[i % 5]) for i in range(24)]
    events.append(feedback(stack.run, 900, unit=unit, touchpoint="app", nps=6, customer=customer,
                           comment="Die App stürzt ständig ab."))
    events.append(feedback(stack.run, 901, unit=unit, touchpoint="call_centre", nps=1, customer=customer,
                           comment=CHURN_DE))
    return events


def test_board_and_inbox_update_live_without_reload(stack: Stack, page: Any, shots: Path) -> None:
    unit, customer = f"live-{stack.run}", f"c-live-{stack.run}"
    page.goto(f"{stack.alerts_url}/#/board")
    page.fill("#board-filter input[name=unit]", unit)
    page.click("#board-filter button[type=submit]")
    page.wait_for_selector("#board-empty:not([hidden])")
    page.evaluate("window.__loadedOnce = true")
    shot(page, shots, "01-board-before-traffic")

    stack.post(traffic(stack, unit, customer))

    # The quality board fills in from the SSE quality tick (or polling): n > 0 for our unit.
    page.wait_for_function(
        "u => [...document.querySelectorAll('#board-body tr')].some(tr => tr.dataset.unit === u"
        " && parseInt(tr.querySelector('td.n').textContent.replace(/\\D/g, '')) > 0)", arg=unit, timeout=WAIT_MS)
    row = page.locator(f'#board-body tr[data-unit="{unit}"]').first
    assert row.locator("svg.ci-bar").count() == 4
    assert row.locator("td[data-metric=nps] .v").inner_text() != "–"
    shot(page, shots, "02-board-live")

    # The churn case is announced in the ARIA live region while the board is shown ...
    page.wait_for_function("() => document.querySelector('#announce').textContent.length > 0", timeout=WAIT_MS)
    assert "churn" in page.inner_text("#announce").lower() or "alert" in page.inner_text("#announce").lower()
    # ... and is in the inbox, reached by the navigation (a hash change, not a reload).
    page.click("nav a[data-route=alerts]")
    case_row = page.locator("#inbox-body tr", has_text=customer)
    case_row.first.wait_for(timeout=WAIT_MS)
    assert case_row.first.get_attribute("data-state") == "firing"
    assert page.evaluate("window.__loadedOnce") is True, "the page reloaded"
    assert page.get_attribute("#conn", "data-state") == "live"
    shot(page, shots, "03-inbox-live-alert")
    assert not page.errors, page.errors


def test_acknowledge_assign_comment_resolve_and_timeline(stack: Stack, page: Any, shots: Path) -> None:
    unit, customer = f"flow-{stack.run}", f"c-flow-{stack.run}"
    stack.post(traffic(stack, unit, customer))
    case_id = wait_case(stack, customer)["case_id"]

    page.goto(f"{stack.alerts_url}/#/alerts/{case_id}")
    page.wait_for_selector("#detail-state[data-state=firing]")
    assert page.locator("#evidence-chart svg[role=img]").count() == 1
    page.locator("#examples li", has_text="kündige").first.wait_for(timeout=WAIT_MS)
    shot(page, shots, "04-detail-firing")

    page.click("#act-ack")
    settled_state(page, "acknowledged")
    shot(page, shots, "05-detail-acknowledged")

    page.fill("#form-assign input[name=assignee]", "anna")
    page.click("#form-assign button")
    page.wait_for_selector("#detail-state[data-state=assigned]")
    page.fill("#form-comment textarea", "Called back, offered a goodwill credit.")
    page.click("#form-comment button")
    page.locator("#history li", has_text="goodwill credit").wait_for()

    page.select_option("#form-resolve select[name=outcome]", "contacted_recovered")
    page.fill("#form-resolve input[name=note]", "Customer stays.")
    page.click("#form-resolve button")
    settled_state(page, "resolved")
    assert page.locator("#history li").count() >= 5  # opened, acknowledged, assigned, commented, resolved
    shot(page, shots, "06-detail-resolved")

    case = stack.api(f"/v1/alerts/{case_id}")
    assert case["state"] == "resolved" and case["outcome"] == "contacted_recovered"
    assert case["assignee"] == "anna"
    assert [e["by"] for e in case["history"][1:]] == ["tester"] * (len(case["history"]) - 1)

    # Silence the customer from the case, see it listed, end it.
    page.select_option("#form-silence select[name=hours]", "24")
    page.click("#form-silence button")
    page.wait_for_selector("#toast:not([hidden])")
    silences = stack.api("/v1/silences")["silences"]
    assert any(s["matchers"] == {"customer_id": customer} and s["created_by"] == "tester" for s in silences)
    page.evaluate("location.hash = '#/silences'")
    row = page.locator("#silences-body tr", has_text=f"customer_id={customer}")
    row.wait_for()
    shot(page, shots, "06b-silences")
    row.locator("button").click()
    row.wait_for(state="detached")
    assert not any(s["matchers"] == {"customer_id": customer} for s in stack.api("/v1/silences")["silences"])
    page.go_back()
    page.wait_for_selector("#detail-state[data-state=resolved]")

    # The customer's timeline: all their feedback, across touchpoints.
    page.click(f'#detail-facts a[href="#/customers/{customer}"]')
    page.wait_for_selector("#timeline li")
    items = page.locator("#timeline li")
    assert items.count() == 2
    assert "kündige" in page.inner_text("#timeline") and "stürzt" in page.inner_text("#timeline")
    shot(page, shots, "07-customer-timeline")
    assert not page.errors, page.errors


def test_aggregate_drop_evidence_is_drawn_as_window_against_baseline(stack: Stack, page: Any, shots: Path) -> None:
    unit = f"drop-{stack.run}"
    good = [feedback(stack.run, i, unit=unit, nps=[10, 9, 9, 8, 10, 9, 7, 9, 10, 3][i % 10],
                     comment="Sehr freundliche Beratung." if i % 3 == 0 else None) for i in range(60)]
    stack.post(good)
    deadline = time.monotonic() + 60
    while sum(g["n"] for g in stack.api(f"/v1/quality?unit={unit}")["groups"]) < 60:
        assert time.monotonic() < deadline, "baseline feedback did not arrive"
        time.sleep(0.5)
    bad = [feedback(stack.run, 100 + i, unit=unit, nps=[1, 2, 0, 3, 9, 4, 2, 5, 1, 3][i % 10],
                    comment="Lange Wartezeit und unfreundliches Personal." if i % 2 else None) for i in range(30)]
    stack.post(bad)
    deadline = time.monotonic() + 60
    while not (cases := stack.api(f"/v1/alerts?unit={unit}&kind=aggregate_drop")["cases"]):
        assert time.monotonic() < deadline, "no aggregate_drop case"
        time.sleep(0.5)
    case_id = cases[0]["case_id"]

    page.goto(f"{stack.alerts_url}/#/alerts/{case_id}")
    page.wait_for_selector("#detail-state[data-state=firing]")
    chart = page.locator("#evidence-svg")
    assert chart.locator("rect.base").count() == 1 and chart.locator("rect.win").count() == 1
    assert chart.locator("line.iv").count() == 3  # the interval of the change as a whisker
    label = chart.get_attribute("aria-label")
    assert "nps" in label and "baseline" in label
    ev = stack.api(f"/v1/alerts/{case_id}")["alert"]["evidence"]
    assert ev["observed"] < ev["baseline"] and ev["interval_high"] < 0
    assert page.locator("#examples li").count() >= 1
    shot(page, shots, "04b-detail-aggregate-drop")
    assert not page.errors, page.errors


def test_german_ui_is_remembered(stack: Stack, page: Any, shots: Path) -> None:
    page.goto(f"{stack.alerts_url}/#/board")
    page.wait_for_selector("#h-board")
    assert page.inner_text("nav a[data-route=alerts]") == "Alerts"
    page.select_option("#lang", "de")
    page.wait_for_function("() => document.documentElement.lang === 'de'")
    assert page.inner_text("#h-board") == "Qualitätsübersicht"
    assert page.inner_text("nav a[data-route=alerts]") == "Meldungen"
    shot(page, shots, "08-board-german")
    page.reload()
    page.wait_for_function("() => document.documentElement.lang === 'de'")
    page.click("nav a[data-route=alerts]")
    page.wait_for_selector("#inbox-body tr")
    assert page.inner_text("#h-alerts") == "Meldungseingang"
    assert page.locator("#inbox-body .badge", has_text="kritisch").count() > 0
    shot(page, shots, "09-inbox-german")
    assert not page.errors, page.errors


def test_falls_back_to_polling_when_the_stream_is_unavailable(stack: Stack, page: Any, shots: Path) -> None:
    unit = f"poll-{stack.run}"
    page.route("**/v1/stream", lambda route: route.abort())
    page.goto(f"{stack.alerts_url}/#/board")
    page.wait_for_selector("#conn[data-state=polling]")
    page.fill("#board-filter input[name=unit]", unit)
    page.click("#board-filter button[type=submit]")
    stack.post(traffic(stack, unit, f"c-poll-{stack.run}")[:10])
    page.wait_for_selector(f'#board-body tr[data-unit="{unit}"]', timeout=WAIT_MS)
    shot(page, shots, "10-board-polling")


CONTRAST_JS = """
() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const bg = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('[hidden]') || el.disabled) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
}
"""

UNLABELLED_JS = """
() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map(el => el.outerHTML.slice(0, 80))
"""


def test_accessible_keyboard_labels_and_contrast(stack: Stack, page: Any, shots: Path) -> None:
    unit, customer = f"a11y-{stack.run}", f"c-a11y-{stack.run}"
    stack.post(traffic(stack, unit, customer))
    case_id = wait_case(stack, customer)["case_id"]
    page.goto(f"{stack.alerts_url}/#/board")
    page.wait_for_selector("#board-body tr")
    assert page.locator("#announce[aria-live]").count() == 1
    for route in ("#/board", "#/alerts", f"#/alerts/{case_id}", f"#/customers/{customer}", "#/silences", "#/system"):
        page.evaluate(f"location.hash = {route!r}")
        page.wait_for_timeout(700)
        assert page.evaluate(UNLABELLED_JS) == [], route
        assert page.evaluate(CONTRAST_JS) == [], route
        if route == "#/system":
            shot(page, shots, "13-delivery-and-recovery")

    # Keyboard only: skip link, shortcuts to the inbox, j to select, Enter to open, a to acknowledge.
    page.goto(f"{stack.alerts_url}/#/board")
    page.wait_for_selector("#board-body tr")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "focus is not visible"
    page.keyboard.press("Escape")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("g")
    page.keyboard.press("a")
    page.wait_for_selector("#view-alerts:not([hidden]) #inbox-body tr")
    page.fill("#alert-filter input[name=customer_id]", customer)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#inbox-body tr').length === 1")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    shot(page, shots, "11-keyboard-inbox")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail-state[data-state=firing]")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("a")
    settled_state(page, "acknowledged")
    shot(page, shots, "12-keyboard-acknowledged")
    assert not page.errors, page.errors
