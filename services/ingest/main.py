"""Entry point: `serve(settings)` runs uvicorn with `settings.workers` processes.

uvicorn turns SIGTERM/SIGINT into a graceful shutdown: it stops accepting connections, lets
running requests finish (up to `graceful_shutdown_s`), then the app's lifespan flushes and
stops the Kafka producer. With several workers, each worker process rebuilds the app from
the same settings (passed to it pickled in an environment variable, since uvicorn starts
workers by import string), and each listens on a socket of its own (`workers.py`).
"""

from __future__ import annotations

import base64
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from services.common.logging import configure_logging
from services.ingest.app import create_app
from services.ingest.metrics import MULTIPROC_ENV
from services.ingest.protocol import CoalescingHttpToolsProtocol
from services.ingest.settings import IngestSettings
from services.ingest.workers import reuse_port_supported, serve_workers

_SETTINGS_ENV = "_KSP_INGEST_SETTINGS_PICKLE"


def app_factory() -> FastAPI:
    """For uvicorn workers: the settings `serve` was given, else the profile's."""
    raw = os.environ.get(_SETTINGS_ENV)
    if raw:
        settings: IngestSettings = pickle.loads(base64.b64decode(raw))  # set by serve() only
    else:
        from services.common.settings import load_settings

        settings = load_settings(IngestSettings)
    configure_logging(settings.log, "ingest")
    return create_app(settings)


def serve(settings: IngestSettings) -> None:
    configure_logging(settings.log, "ingest")
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "loop": "auto",  # uvloop when installed
        # httptools (much faster than h11), each response written in one system call.
        "http": CoalescingHttpToolsProtocol,
        "timeout_graceful_shutdown": int(settings.graceful_shutdown_s),
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    os.environ[_SETTINGS_ENV] = base64.b64encode(pickle.dumps(settings)).decode()
    with shared_metrics_directory():
        _serve_workers(settings, common)


def _serve_workers(settings: IngestSettings, common: dict[str, Any]) -> None:
    if reuse_port_supported(settings.port):  # a socket per worker: connections spread evenly
        config = uvicorn.Config("services.ingest.main:app_factory", factory=True, workers=settings.workers,
                                **common)  # type: ignore[arg-type]
        serve_workers(config, settings.host, settings.port)
        return
    uvicorn.run("services.ingest.main:app_factory", factory=True, workers=settings.workers, **common)  # type: ignore[arg-type]


@contextmanager
def shared_metrics_directory() -> Iterator[str]:
    """A fresh directory in which every worker writes its metric samples (prometheus_client's
    multiprocess mode), set before the workers start and removed when they have stopped; an
    operator-provided PROMETHEUS_MULTIPROC_DIR is used as it is, emptied first."""
    given = os.environ.get(MULTIPROC_ENV)
    directory = given or tempfile.mkdtemp(prefix="ksp-ingest-metrics-")
    for stale in os.listdir(directory) if given else []:
        if stale.endswith(".db"):
            os.remove(os.path.join(directory, stale))
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    from services.common.settings import load_settings

    serve(load_settings(IngestSettings))


if __name__ == "__main__":
    main()
