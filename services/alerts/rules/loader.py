"""Load the rules YAML with precise errors, and watch it for changes (hot reload).

Errors name the path of the bad field and its line in the file, e.g.::

    rules[2].min_n: Input should be greater than 0 (line 14)

Pydantic reports locations as tuples (``('rules', 2, 'aggregate_drop', 'min_n')``); they are
walked through the YAML node tree (which keeps every node's start mark) to find the line.
Discriminator tags and other parts of a location that are not in the file are skipped; a
missing field is reported at the line of the mapping it is missing from.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import Loc, RuleSet, semantic_errors

log = logging.getLogger("ksp.alerts.rules")

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")


@dataclass(frozen=True)
class RuleError:
    path: str
    message: str
    line: int | None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"


class RulesError(ValueError):
    """The rules file cannot be used; ``str()`` lists every problem, one per line."""

    def __init__(self, message: str, errors: list[RuleError] | None = None,
                 source: str | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.source = source


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def locate(root: yaml.Node | None, loc: Loc) -> tuple[str, int | None]:
    """The displayed path and the 1-based line of ``loc`` in the YAML node tree."""
    node = root
    shown: list[str | int] = []
    line = None if root is None else root.start_mark.line + 1
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    shown.append(part)
                    # An extra key or a bad value: point at the key's line for mappings/lists
                    # (the value may start on the next line), at the value for scalars.
                    line = (value if isinstance(value, yaml.ScalarNode) else key).start_mark.line + 1
                    node = value
                    break
            else:
                if last:  # a missing field: reported at the mapping it belongs in
                    shown.append(part)
                # else: a discriminator tag or validator name; not in the file
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            shown.append(part)
        elif not isinstance(node, yaml.ScalarNode) and (
            isinstance(part, int) or not part.startswith(("function-", "literal["))
        ):
            shown.append(part)  # not walkable (e.g. a list where a mapping was expected)
    return format_path(tuple(shown)), line


def parse(text: str, source: str = "<rules>") -> RuleSet:
    """Parse and validate rules YAML text; raises :class:`RulesError`."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
            data: Any = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        err = RuleError("", f"YAML syntax error: {problem}", mark.line + 1 if mark else None)
        raise RulesError(f"invalid rules file {source}: YAML syntax error: {problem}{where}",
                         [err], source) from None
    except yaml.YAMLError as exc:
        raise RulesError(f"invalid rules file {source}: {exc}", [RuleError("", str(exc), None)],
                         source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        err = RuleError("", "the rules file must be a mapping (version, defaults, rules, routing)",
                        1 if root is None else root.start_mark.line + 1)
        raise RulesError(f"invalid rules file {source}:\n  {err}", [err], source)
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            loc = tuple(e["loc"])
            if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = (*loc, "kind")  # the discriminator: point at (or ask for) `kind`
            msg = e["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            path, line = locate(root, loc)
            errors.append(RuleError(path, msg, line))
        raise _error(source, errors) from None
    problems = semantic_errors(ruleset)
    if problems:
        errors = []
        for loc, msg in problems:
            path, line = locate(root, loc)
            errors.append(RuleError(path, msg, line))
        raise _error(source, errors)
    return ruleset


def _error(source: str, errors: list[RuleError]) -> RulesError:
    errors = sorted(errors, key=lambda e: (e.line or 0, e.path))
    body = "\n".join(f"  {e}" for e in errors)
    return RulesError(f"invalid rules file {source} ({len(errors)} error(s)):\n{body}", errors, source)


def load_rules(path: Path | None = None) -> RuleSet:
    """Load a rules file (the built-in ``default_rules.yaml`` when ``path`` is None)."""
    p = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file {p}: {exc.strerror or exc}", source=str(p)) from None
    return parse(text, str(p))


class RulesWatcher:
    """Hot reload: :meth:`poll` re-reads the file when its modification time (or size) changed.

    Returns the new :class:`RuleSet`, or None when nothing changed or the new file is invalid
    (then the error is logged, kept in :attr:`last_error`, and the caller keeps its rules; the
    same broken version is not re-reported until the file changes again). ``path=None`` watches
    nothing (the built-in rules never change).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.last_error: RulesError | None = None
        self._stamp = self._current_stamp()

    def _current_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self) -> RuleSet | None:
        if self.path is None:
            return None
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if stamp is None:
            log.error("rules file %s disappeared; keeping the current rules", self.path)
            return None
        try:
            rules = load_rules(self.path)
        except RulesError as exc:
            self.last_error = exc
            log.error("rules file %s changed but is invalid; keeping the current rules: %s",
                      self.path, exc)
            return None
        self.last_error = None
        log.info("rules reloaded from %s (%d rules)", self.path, len(rules.rules))
        return rules
