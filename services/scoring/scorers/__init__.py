"""Pure per-event scoring; no I/O. Bump SCORER_VERSION whenever a score would change."""

from services.scoring.scorers.event import SCORER_VERSION, score_event

__all__ = ["SCORER_VERSION", "score_event"]
