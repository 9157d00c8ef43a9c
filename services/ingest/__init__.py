"""The ingest service: every touchpoint's feedback in, acknowledged by Kafka, nothing lost.

Modules (small, one concern each):

- `settings.py`: `IngestSettings` (env `KSP_*`), API keys and adapter mappings.
- `app.py`: `create_app(settings, registry=None)` -> FastAPI; wiring only.
- `views.py`: thin routes (`/v1/feedback`, `/v1/webhooks/*`, `/healthz`, `/readyz`, `/metrics`, `/docs`).
- `fastpath.py`: `POST /v1/feedback` answered by its endpoint straight, ahead of FastAPI's stack.
- `parsing.py`: body -> candidate items (JSON, NDJSON, CloudEvents structured/batch/binary).
- `ingestor.py`: validate -> redact -> scope -> produce -> 202 / problem.
- `problems.py`: RFC 9457 problem+json.
- `producer.py`: aiokafka producer, acks=all, a request's events awaited together.
- `batcher.py`: per-partition record batches shared by concurrent requests (one future a batch).
- `auth.py`, `ratelimit.py`, `redaction.py`, `metrics.py`, `adapters/` (Typeform, Qualtrics).
- `main.py`: `serve(settings)` (uvicorn, workers, graceful shutdown); `workers.py`: a socket
  per worker (SO_REUSEPORT); `protocol.py`: each HTTP response in one write.
- `emitter.py`: `HttpEmitter` / `KafkaEmitter` for touchpoint systems.
- `asyncapi.py`: generates docs/asyncapi.yaml.
"""
