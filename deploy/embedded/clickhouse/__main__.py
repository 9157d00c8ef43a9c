"""CLI: python -m deploy.embedded.clickhouse --host 127.0.0.1 --port 8123 --data-dir .ksp-data/clickhouse"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.embedded.clickhouse",
        description=(
            "Serve the embedded ClickHouse engine (chdb) on ClickHouse's HTTP interface, so "
            "clickhouse-connect, curl and other ClickHouse HTTP clients can use it. Local/test only."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8123, help="HTTP port, 0 = any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".ksp-data/clickhouse"),
        help="engine data directory; persists across restarts, locked by one process (default: %(default)s)",
    )
    parser.add_argument("--timezone", default="UTC", help="server timezone (default: %(default)s)")
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds to let in-flight requests finish on SIGTERM (default: %(default)s)",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=16,
        help="idle chdb connections kept for session-less requests (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if hasattr(faulthandler, "register"):
        import signal

        faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid>: dump all thread stacks
    os.environ["TZ"] = (
        args.timezone
    )  # before the engine starts: timezone() and X-ClickHouse-Timezone
    time.tzset()
    from .server import serve

    return serve(args.host, args.port, args.data_dir, grace=args.grace, pool_size=args.pool_size)


if __name__ == "__main__":
    sys.exit(main())
