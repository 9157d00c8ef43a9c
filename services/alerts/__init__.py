"""The alerts service: statistically real loyalty drops and churn risks, delivered once.

- `agents.py`: the Faust agent over scored events (thin loop).
- `detectors/`: pure detectors (aggregate drop, theme surge, churn risk).
- `flows/`: scored event -> detector decisions -> alerts (pure, with explicit state).
- `delivery/`: channels (webhook, ...), with retries.
- `api.py`: the HTTP API (alerts, health, metrics); `app.py` wires it all; `settings.py`.
"""
