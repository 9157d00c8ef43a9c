"""Alert rules as configuration: the YAML file's models, loading with precise errors, hot reload.

    rules = load_rules(path)          # None -> the built-in default_rules.yaml
    watcher = RulesWatcher(path)      # watcher.poll() -> a new RuleSet when the file changed
"""

from .compile import Effective, effective
from .loader import DEFAULT_RULES_PATH, RuleError, RulesError, RulesWatcher, load_rules, parse
from .models import (
    ChurnRule,
    Defaults,
    Digest,
    DropRule,
    InhibitRule,
    Override,
    Route,
    RouteDefaults,
    Routing,
    RuleSet,
    SurgeRule,
    parse_duration,
)

__all__ = [
    "DEFAULT_RULES_PATH",
    "ChurnRule",
    "Defaults",
    "Digest",
    "DropRule",
    "Effective",
    "InhibitRule",
    "Override",
    "Route",
    "RouteDefaults",
    "Routing",
    "RuleError",
    "RuleSet",
    "RulesError",
    "RulesWatcher",
    "SurgeRule",
    "effective",
    "load_rules",
    "parse",
    "parse_duration",
]
