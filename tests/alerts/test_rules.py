"""Specification of the rules file (`services.alerts.rules`): loading, precise errors, overrides,
hot reload.

Every error names the path of the bad field and its line in the file, so an operator can fix a
rules file from the log line alone.
"""

from __future__ import annotations

import logging
import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import Severity
from services.alerts.detectors.churn import ChurnConfig
from services.alerts.detectors.drop import DropConfig
from services.alerts.rules import (
    DEFAULT_RULES_PATH,
    RulesError,
    RulesWatcher,
    effective,
    load_rules,
    parse,
    parse_duration,
)
from services.alerts.rules.models import DropRule

ROUTING = """\
routing:
  receivers: [webhook-ops, slack-ops]
  default: {receiver: webhook-ops}
"""


def rules_text(body: str, routing: str = ROUTING) -> str:
    return "version: 1\n" + textwrap.dedent(body) + routing


def error_of(text: str) -> RulesError:
    with pytest.raises(RulesError) as info:
        parse(text, "rules.yaml")
    return info.value


# ============================================================================ the defaults


class TestDefaultRules:
    def test_the_built_in_file_loads_and_covers_every_detector(self) -> None:
        rules = load_rules()
        kinds = {r.kind for r in rules.rules}
        assert kinds == {"aggregate_drop", "theme_surge", "churn_risk"}
        metrics = {r.metric for r in rules.rules if isinstance(r, DropRule)}
        assert {"nps", "detractor_share", "csat_top_box", "sentiment"} <= metrics
        assert load_rules(DEFAULT_RULES_PATH) == rules

    def test_default_scopes_are_touchpoint_unit_segment_and_touchpoint_unit(self) -> None:
        rules = load_rules()
        nps = rules.rule("nps-drop")
        assert nps is not None
        assert rules.scopes_of(nps) == [("touchpoint", "unit", "segment"), ("touchpoint", "unit")]

    def test_default_routing_inhibits_churn_alerts_during_a_units_aggregate_drop(self) -> None:
        routing = load_rules().routing
        assert routing.default.receiver == "webhook-ops"
        assert {"webhook-ops", "slack-ops", "email-cx", "alertmanager"} <= set(routing.receivers)
        [inhibit] = routing.inhibit
        assert inhibit.source == {"kind": "aggregate_drop"}
        assert inhibit.target == {"kind": "churn_risk"}
        assert inhibit.equal == ["touchpoint", "unit"]

    def test_every_default_rule_builds_its_detector_configuration(self) -> None:
        rules = load_rules()
        for rule in rules.rules:
            eff = effective(rules, rule, {"touchpoint": "store", "unit": "u", "segment": "s"})
            assert eff.enabled
        share = rules.rule("detractor-share-rise")
        assert effective(rules, share, {}).config.shift == 0.05  # type: ignore[arg-type, union-attr]


# ============================================================================ errors


class TestPreciseErrors:
    def test_a_bad_value_names_path_message_and_line(self) -> None:
        text = rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
                metric: nps
              - name: b
                kind: churn_risk
              - name: c
                kind: aggregate_drop
                metric: nps
                min_n: 0
            """)
        err = error_of(text)
        assert "rules[2].min_n: Input should be greater than 0 (line 11)" in str(err)
        assert [(e.path, e.line) for e in err.errors] == [("rules[2].min_n", 11)]

    def test_an_unknown_key_is_reported_at_its_own_line(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
                metric: nps
                mni_n: 5
            """))
        assert "rules[0].mni_n: Extra inputs are not permitted (line 6)" in str(err)

    def test_a_missing_field_is_reported_at_the_entry_it_is_missing_from(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
            """))
        assert "rules[0].metric: Field required (line 3)" in str(err)

    def test_an_unknown_kind_points_at_the_kind_line(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_dorp
            """))
        [e] = err.errors
        assert (e.path, e.line) == ("rules[0].kind", 4)
        assert "aggregate_drop" in e.message and "churn_risk" in e.message

    def test_a_bad_duration_and_a_bad_time_zone(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: surge
                kind: theme_surge
                params: {window: 3x}
            """, routing=ROUTING + """\
  digests:
    - {name: cx, receiver: slack-ops, at: "08:00", timezone: Mars/Olympus}
"""))
        lines = str(err).splitlines()
        assert any(line.strip().startswith("rules[0].params.window: invalid duration '3x'")
                   and line.endswith("(line 5)") for line in lines)
        assert "routing.digests[0].timezone: unknown time zone 'Mars/Olympus' (line 10)" in str(err)

    def test_unknown_receiver_label_and_label_value_are_semantic_errors_with_lines(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
                metric: nps
                overrides:
                  - match: {touchpiont: call_centre}
                    severity: critical
                  - match: {touchpoint: callcentre}
                    min_n: 50
            """, routing="""\
routing:
  receivers: [webhook-ops]
  default: {receiver: webhook-op}
"""))
        text = str(err)
        assert "rules[0].overrides[0].match.touchpiont: unknown label 'touchpiont'" in text
        assert "rules[0].overrides[1].match.touchpoint: unknown touchpoint 'callcentre'" in text
        assert "routing.default.receiver: unknown receiver 'webhook-op' (declared: webhook-ops) (line 13)" in text
        assert [e.line for e in err.errors] == [7, 9, 13]

    def test_override_parameters_are_validated_where_they_are_written(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
                metric: nps
                overrides:
                  - match: {touchpoint: store}
                    params: {shift: -1}
            """))
        assert "rules[0].overrides[0].params.shift: Input should be greater than 0 (line 8)" in str(err)

    def test_duplicate_rule_names_and_unknown_scope_labels(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: churn_risk
              - name: a
                kind: aggregate_drop
                metric: nps
                scopes: [[touchpoint, region]]
            """))
        text = str(err)
        assert "rules[1].name: duplicate rule name 'a' (also rules[0]) (line 5)" in text
        assert "rules[1].scopes[0][1]: unknown label 'region'" in text

    def test_yaml_syntax_errors_give_line_and_column(self) -> None:
        err = error_of("version: 1\nrules:\n  - name: a\n   kind: [x\n")
        assert "YAML syntax error" in str(err) and "line" in str(err)
        assert err.errors[0].line is not None

    def test_a_file_that_is_not_a_mapping(self) -> None:
        err = error_of("- just\n- a list\n")
        assert "must be a mapping" in str(err)

    def test_all_errors_are_reported_at_once(self) -> None:
        err = error_of(rules_text("""\
            rules:
              - name: a
                kind: aggregate_drop
                metric: nps
                min_n: -3
              - name: b
                kind: churn_risk
                severity: urgent
            """))
        assert [e.path for e in err.errors] == ["rules[0].min_n", "rules[1].severity"]

    def test_a_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(RulesError, match="cannot read rules file"):
            load_rules(tmp_path / "nope.yaml")


# ============================================================================ overrides


class TestOverrides:
    TEXT = rules_text("""\
        defaults:
          severity: warning
        rules:
          - name: nps
            kind: aggregate_drop
            metric: nps
            min_n: 30
            params: {shift: 10, warmup_n: 500}
            overrides:
              - match: {touchpoint: call_centre}
                min_n: 80
                severity: critical
              - match: {touchpoint: call_centre, unit: night-shift}
                enabled: false
              - match: {segment: business}
                params: {shift: 5}
          - name: churn
            kind: churn_risk
            enabled: false
            overrides:
              - match: {touchpoint: store}
                enabled: true
        """)

    def test_scope_overrides_change_min_n_severity_and_parameters(self) -> None:
        rules = parse(self.TEXT)
        nps = rules.rule("nps")
        plain = effective(rules, nps, {"touchpoint": "web", "unit": "u1"})  # type: ignore[arg-type]
        assert plain.severity is Severity.warning and plain.enabled
        assert isinstance(plain.config, DropConfig)
        assert (plain.config.min_n, plain.config.shift, plain.config.warmup_n) == (30, 10, 500)
        cc = effective(rules, nps, {"touchpoint": "call_centre", "unit": "u1"})  # type: ignore[arg-type]
        assert cc.severity is Severity.critical and cc.config.min_n == 80  # type: ignore[union-attr]
        night = effective(rules, nps, {"touchpoint": "call_centre", "unit": "night-shift"})  # type: ignore[arg-type]
        assert not night.enabled and night.severity is Severity.critical
        business = effective(rules, nps, {"touchpoint": "web", "unit": "u", "segment": "business"})  # type: ignore[arg-type]
        assert business.config.shift == 5 and business.config.warmup_n == 500  # type: ignore[union-attr]

    def test_an_override_may_enable_a_rule_disabled_by_default(self) -> None:
        rules = parse(self.TEXT)
        churn = rules.rule("churn")
        assert not effective(rules, churn, {"touchpoint": "web"}).enabled  # type: ignore[arg-type]
        store = effective(rules, churn, {"touchpoint": "store"})  # type: ignore[arg-type]
        assert store.enabled and isinstance(store.config, ChurnConfig)

    def test_a_scope_without_the_matched_label_is_not_overridden(self) -> None:
        rules = parse(self.TEXT)
        nps = rules.rule("nps")
        # the touchpoint x unit scope has no segment label: the business override does not apply
        assert effective(rules, nps, {"touchpoint": "web", "unit": "u"}).config.shift == 10  # type: ignore[arg-type, union-attr]


# ============================================================================ durations


class TestDurations:
    @pytest.mark.parametrize(("text", "expected"), [
        ("30s", timedelta(seconds=30)), ("5m", timedelta(minutes=5)), ("4h", timedelta(hours=4)),
        ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("1h30m", timedelta(minutes=90)),
        (90, timedelta(seconds=90)), (0.5, timedelta(milliseconds=500)), ("250ms", timedelta(milliseconds=250)),
    ])
    def test_forms(self, text: object, expected: timedelta) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize("text", ["", "5", "m5", "5 minutes", "-3s", True, None])
    def test_rejected(self, text: object) -> None:
        with pytest.raises(ValueError):
            parse_duration(text)

    @given(st.integers(0, 10_000), st.sampled_from(["s", "m", "h", "d"]))
    def test_round_trip(self, n: int, unit: str) -> None:
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        assert parse_duration(f"{n}{unit}") == timedelta(seconds=n * seconds)

    def test_an_unquoted_time_of_day_is_read_as_a_time(self) -> None:
        rules = parse(rules_text("rules: []\n", routing=ROUTING + """\
  digests:
    - {name: cx, receiver: slack-ops, at: 08:30, timezone: Europe/Berlin}
"""))
        assert rules.routing.digests[0].at.isoformat() == "08:30:00"


# ============================================================================ hot reload


class TestHotReload:
    def write(self, path: Path, text: str, bump: int) -> None:
        path.write_text(text)
        st_ = path.stat()
        os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + bump * 1_000_000_000))

    def test_poll_returns_new_rules_only_when_the_file_changed(self, tmp_path: Path) -> None:
        path = tmp_path / "rules.yaml"
        self.write(path, DEFAULT_RULES_PATH.read_text(), 0)
        watcher = RulesWatcher(path)
        assert watcher.poll() is None  # unchanged since the watcher started
        text = DEFAULT_RULES_PATH.read_text().replace("min_n: 30\n    params: {shift: 10}", "min_n: 45\n    params: {shift: 10}")
        self.write(path, text, 5)
        new = watcher.poll()
        assert new is not None and new.rule("nps-drop").min_n == 45  # type: ignore[union-attr]
        assert watcher.poll() is None

    def test_an_invalid_edit_keeps_the_old_rules_and_logs_why(self, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
        path = tmp_path / "rules.yaml"
        self.write(path, DEFAULT_RULES_PATH.read_text(), 0)
        watcher = RulesWatcher(path)
        broken = DEFAULT_RULES_PATH.read_text().replace("min_n: 30\n    params: {shift: 10}", "min_n: 0\n    params: {shift: 10}")
        self.write(path, broken, 5)
        with caplog.at_level(logging.ERROR, logger="ksp.alerts.rules"):
            assert watcher.poll() is None
        assert "keeping the current rules" in caplog.text and "rules[0].min_n" in caplog.text
        assert watcher.last_error is not None and watcher.last_error.errors[0].path == "rules[0].min_n"
        assert watcher.poll() is None  # the same broken file is not re-reported
        self.write(path, DEFAULT_RULES_PATH.read_text(), 10)  # fixed
        assert watcher.poll() is not None and watcher.last_error is None

    def test_a_deleted_file_keeps_the_rules(self, tmp_path: Path) -> None:
        path = tmp_path / "rules.yaml"
        self.write(path, DEFAULT_RULES_PATH.read_text(), 0)
        watcher = RulesWatcher(path)
        path.unlink()
        assert watcher.poll() is None

    def test_no_path_means_the_built_in_rules_which_never_change(self) -> None:
        assert RulesWatcher(None).poll() is None
