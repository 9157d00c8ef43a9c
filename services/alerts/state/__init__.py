"""Alerts state that survives a restart: records on the compacted state topic (records.py),
their ordered writer and start-up reader (log.py), and what is persisted and restored (durable.py)."""
