"""Schemathesis against the ingest OpenAPI: a real uvicorn server on a free port with the real
(session) broker; schema-conforming and schema-violating requests for every operation.

Passes when no request gets a 5xx and every answer comes within 10 s (no hang). Bounded:
a fixed number of examples per operation and generation mode, no shrinking, no example
database. Schemathesis generates the cases; hypothesis drives them directly (schemathesis'
own pytest integration does not run on pytest 9).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis.generation import GenerationMode

from deploy.embedded.kafka import EmbeddedKafka
from services.ingest.app import create_app
from tests.ingest.conftest import AUTH, live_server, make_settings

EXAMPLES = {GenerationMode.POSITIVE: 100, GenerationMode.NEGATIVE: 60}
MAX_RESPONSE_S = 10.0

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def ingest_url(kafka: EmbeddedKafka) -> Iterator[str]:
    # Rate limit off: the fuzzer sends far more than a touchpoint would; 429 is not the point.
    settings_ = make_settings(kafka.bootstrap_servers, rate_limit_enabled=False)
    with live_server(create_app(settings_, CollectorRegistry())) as url:
        yield url


def _operations(url: str) -> list[schemathesis.APIOperation]:  # type: ignore[name-defined]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(operation, mode: GenerationMode, examples: int, base_url: str,  # type: ignore[no-untyped-def]
          session: requests.Session, failures: list[str], statuses: dict[int, int]) -> None:
    """`examples` generated requests for one operation in one mode; findings go to `failures`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        started = time.monotonic()
        try:
            response = case.call(base_url=base_url, session=session, headers=AUTH, timeout=MAX_RESPONSE_S)
        except requests.Timeout:
            failures.append(f"{operation.label} ({mode.value}) hung: {case.as_curl_command(headers=AUTH)}")
            return
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        elapsed = time.monotonic() - started
        if response.status_code >= 500:
            failures.append(f"{operation.label} ({mode.value}) -> {response.status_code} "
                            f"{response.text[:300]}\n  {case.as_curl_command(headers=AUTH)}")
        elif elapsed >= MAX_RESPONSE_S:
            failures.append(f"{operation.label} ({mode.value}) took {elapsed:.1f} s")

    run()


def test_ingest_never_5xx_never_hangs(ingest_url: str) -> None:
    operations = _operations(ingest_url)
    labels = {op.label for op in operations}
    assert {"POST /v1/feedback", "POST /v1/webhooks/typeform", "POST /v1/webhooks/qualtrics"} <= labels
    failures: list[str] = []
    statuses: dict[int, int] = {}
    skipped: list[str] = []
    session = requests.Session()
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            try:
                _fuzz(operation, mode, examples, ingest_url, session, failures, statuses)
            except Unsatisfiable:
                # nothing to violate (e.g. GET /healthz has no parameters): no negative cases
                assert mode is GenerationMode.NEGATIVE, operation.label
                skipped.append(operation.label)
    print("status codes:", dict(sorted(statuses.items())), "no negative cases for:", skipped)
    assert sum(statuses.values()) >= 100, statuses
    assert not failures, "\n".join(failures[:20])
