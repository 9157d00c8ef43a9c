"""Embedded ClickHouse: the chdb engine behind ClickHouse's HTTP interface (local/test default).

    python -m deploy.embedded.clickhouse --host 127.0.0.1 --port 8123 --data-dir .ksp-data/clickhouse

    with EmbeddedClickHouse(Path("/tmp/ch"), port=free_port()) as ch:
        client = clickhouse_connect.get_client(host=ch.host, port=ch.port)

Importing this package does not import chdb; only the server subprocess does.
"""

from .handle import EmbeddedClickHouse, free_port

__all__ = ["EmbeddedClickHouse", "free_port"]
