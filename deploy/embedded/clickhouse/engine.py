"""chdb engine wrapper: one engine per process, one chdb connection per HTTP session.

chdb hosts a single engine bound to one data directory; every `chdb.connect(path)` is a
cheap, independent session (own current database, settings, temporary tables) on that
engine, and different connections run queries in parallel. A single connection is not
used concurrently: each `Conn` has a lock held for the whole request.

Request-scoped settings (URL params) are applied with `SET` and lazily restored: a
connection remembers which request settings it currently carries (`applied`) and the
session's own values (`saved`), so a client that sends the same settings on every request
pays for the `SET`s once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import chdb

from .protocol import HttpError

log = logging.getLogger("kundensprechen.embedded.clickhouse")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMP_RE = re.compile(rb"^\s*CREATE\s+(OR\s+REPLACE\s+)?TEMPORARY\b", re.IGNORECASE)


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass
class Outcome:
    body: bytes = b""
    result_format: str | None = None  # set only for statements that return a result
    summary: dict[str, str] = field(default_factory=dict)


MAX_INSERT_BYTES = 1 << 30
INLINE_INSERT_BYTES = 200 * 1024
SPOOL_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None


class Conn:
    """One chdb connection (= one ClickHouse session)."""

    def __init__(self, path: str, session_id: str | None = None, timeout: float = 60.0):
        self.wrapper = chdb.connect(path)  # must stay referenced: its __del__ closes the connection
        self.raw = self.wrapper._conn  # the pybind connection: query/send_insert/insert_append...
        self.session_id = session_id
        self.timeout = timeout
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.own_db = "default"
        self.cur_db = "default"
        self.applied: dict[str, str] = {}
        self.saved: dict[str, tuple[str, bool]] = {}
        self.polluted = False  # pooled connection changed by SET/USE/temp table: discard it
        # chdb defaults to async inserts (deduplication off, errors of materialized views
        # swallowed); a ClickHouse server inserts synchronously. Behave like the server.
        self._q("SET async_insert = 0")

    # -- low level
    def _q(self, sql: str, fmt: str = "TabSeparated", params: dict | None = None):
        return self.raw.query(sql, fmt, params=params or {})

    def close(self) -> None:
        try:
            self.wrapper.close()
        except Exception:  # pragma: no cover - best effort
            log.debug("closing chdb connection failed", exc_info=True)

    # -- request context (database + settings)
    def _restore(self, names: Iterable[str]) -> None:
        for name in list(names):
            value, changed = self.saved.pop(name, ("", False))
            self.applied.pop(name, None)
            try:
                if changed:
                    lit = (
                        value if len(value) >= 2 and value[0] == value[-1] == "'" else _quote(value)
                    )
                    self._q(f"SET {name} = {lit}")
                else:
                    self._q(f"SET {name} = DEFAULT")
            except Exception:
                log.warning("could not restore setting %s", name, exc_info=True)

    def _apply(self, database: str | None, settings: dict[str, str]) -> None:
        target = database or self.own_db
        if target != self.cur_db:
            self._q(f"USE {_ident(target)}")
            self.cur_db = target
        stale = [k for k in self.applied if k not in settings]
        if stale:
            self._restore(stale)
        todo = {k: v for k, v in settings.items() if self.applied.get(k) != v}
        if not todo:
            return
        for k in todo:
            if not _NAME_RE.match(k):
                raise HttpError(115, f"Unknown setting '{k}'")
        unsaved = [k for k in todo if k not in self.saved]
        if unsaved:
            names = ", ".join(_quote(k) for k in unsaved)
            res = self._q(
                f"SELECT name, value, changed FROM system.settings WHERE name IN ({names})",
                "JSONEachRow",
            )
            found = {}
            for line in res.bytes().splitlines():
                row = json.loads(line)
                found[row["name"]] = (row["value"], bool(row["changed"]))
            for k in unsaved:
                self.saved[k] = found.get(k, ("", False))
        for k, v in todo.items():
            self._q(f"SET {k} = {_quote(v)}")
            self.applied[k] = v

    def _reset(self) -> None:
        """Back to the session's own state (no request settings, own database)."""
        if self.applied:
            self._restore(list(self.applied))
        if self.cur_db != self.own_db:
            self._q(f"USE {_ident(self.own_db)}")
            self.cur_db = self.own_db

    # -- statements
    def execute(
        self,
        sql: bytes,
        default_format: str,
        params: dict[str, str],
        database: str | None,
        settings: dict[str, str],
        readonly_get: bool = False,
    ) -> Outcome:
        from .protocol import output_format

        text = sql.decode("utf-8", "replace")
        klass = self._classify(text)
        if klass == "CONTROL":  # SET / USE change the session itself, not the request
            self._reset()
            if self.session_id is None:
                self.polluted = True
            res = self._q(text, default_format, params)
            self.own_db = self.cur_db = (
                self._q("SELECT currentDatabase()", "TSVRaw").bytes().decode().strip()
            )
            return Outcome(res.bytes(), None, self._summary(res))
        if readonly_get and klass == "MUTATING":
            raise HttpError(
                164,
                "Cannot execute query in readonly mode. For queries over HTTP, method GET implies "
                "readonly. You should use method POST for modifying queries. (READONLY)",
            )
        if self.session_id is None and _TEMP_RE.match(sql):
            self.polluted = True
        self._apply(database, settings)
        res = self._q(text, default_format, params)
        fmt = output_format(sql, default_format) if klass == "READ_ONLY" else None
        return Outcome(res.bytes(), fmt, self._summary(res))

    def insert(
        self,
        header: str,
        fmt: str,
        chunks: Iterator[bytes],
        database: str | None,
        settings: dict[str, str],
    ) -> Outcome:
        self._apply(database, settings)
        started = time.perf_counter()
        # chdb's streaming insert (send_insert) reports no errors raised by materialized
        # views: the insert "succeeds" while the view's target misses the block. A server
        # fails such an insert, and the pipeline relies on that. So Native data (what
        # clickhouse-connect sends) is inserted with INSERT ... SELECT from a spooled file,
        # small text inserts inline (chdb reads at most 256 KiB of inline data), and only
        # large text inserts are streamed (their view errors stay hidden: a known limit).
        data = bytearray()
        for chunk in chunks:
            data += chunk
            if len(data) > MAX_INSERT_BYTES:
                raise HttpError(241, f"Insert larger than {MAX_INSERT_BYTES} bytes (embedded limit)")
        if fmt == "Native":
            res = self._insert_spooled(header, bytes(data))
        elif len(data) < INLINE_INSERT_BYTES:
            res = self.raw.query(f"{header} FORMAT {fmt}\n".encode() + bytes(data), "TabSeparated")
        else:
            res = self._insert_streamed(header, fmt, bytes(data))
        elapsed = res.elapsed() or (time.perf_counter() - started)
        summary = {
            "read_rows": "0",
            "read_bytes": "0",
            "written_rows": str(res.rows_written()),
            "written_bytes": str(res.bytes_written()),
            "total_rows_to_read": "0",
            "result_rows": str(res.rows_written()),
            "result_bytes": str(res.bytes_written()),
            "elapsed_ns": str(int(elapsed * 1e9)),
        }
        return Outcome(b"", None, summary)

    def _insert_spooled(self, header: str, data: bytes):  # type: ignore[no-untyped-def]
        fd, path = tempfile.mkstemp(prefix="ksp-insert-", suffix=".native", dir=SPOOL_DIR)
        try:
            with os.fdopen(fd, "wb") as spool:
                spool.write(data)
            return self.raw.query(f"{header} SELECT * FROM file({_quote(path)}, Native)", "TabSeparated")
        finally:
            os.unlink(path)

    def _insert_streamed(self, header: str, fmt: str, data: bytes):  # type: ignore[no-untyped-def]
        ins = self.raw.send_insert(header, fmt)
        try:
            self.raw.insert_append(ins, data)
            return self.raw.insert_done(ins)
        except BaseException:
            try:
                self.raw.insert_cancel(ins)
            except Exception:
                log.debug("insert cancel failed", exc_info=True)
            raise

    def _classify(self, text: str) -> str:
        """READ_ONLY / MUTATING / CONTROL / UNKNOWN, via chdb's parser (no execution)."""
        try:
            info = self.raw.classify_query(text)
        except Exception:  # noqa: BLE001 - unparsable SQL: let the query itself report it
            return "UNKNOWN"
        if info.get("statement_count", 1) > 1:
            raise HttpError(62, "Multi-statements are not allowed. (SYNTAX_ERROR)")
        qc = info["query_class"]
        return getattr(qc, "name", None) or str(qc).rsplit(".", 1)[-1]

    @staticmethod
    def _summary(res) -> dict[str, str]:
        def num(name: str) -> int:
            try:
                return int(getattr(res, name)())
            except Exception:  # noqa: BLE001 - statistics are best effort
                return 0

        return {
            "read_rows": str(num("rows_read")),
            "read_bytes": str(num("bytes_read")),
            "written_rows": str(num("rows_written")),
            "written_bytes": str(num("bytes_written")),
            "total_rows_to_read": str(num("rows_read")),
            "result_rows": "0",
            "result_bytes": str(num("size")),
            "elapsed_ns": str(int((res.elapsed() or 0) * 1e9)),
        }


class Engine:
    """The process-wide chdb engine plus its session table and anonymous connection pool."""

    def __init__(self, path: str, pool_size: int = 16):
        self.path = path
        self._anchor = chdb.connect(path)  # keeps the engine alive while sessions come and go
        self._lock = threading.Lock()
        self._pool: list[Conn] = []
        self._pool_size = pool_size
        self._sessions: dict[str, Conn] = {}
        self._closed = False
        self.timezone, self.version = (
            self._anchor.query("SELECT timezone(), version()", "TSVRaw")
            .bytes()
            .decode()
            .strip()
            .split("\t")
        )

    @contextmanager
    def connection(
        self,
        session_id: str | None,
        timeout: float = 60.0,
        check: bool = False,
        wait: float = 120.0,
    ) -> Iterator[Conn]:
        if self._closed:
            raise HttpError(210, "Server is shutting down", 500)
        if not session_id:
            with self._lock:
                conn = self._pool.pop() if self._pool else None
            conn = conn or Conn(self.path)
            conn.lock.acquire()
            try:
                yield conn
            finally:
                conn.lock.release()
                with self._lock:
                    if conn.polluted or self._closed or len(self._pool) >= self._pool_size:
                        conn.close()
                    else:
                        self._pool.append(conn)
            return
        with self._lock:
            conn = self._sessions.get(session_id)
            if conn is None:
                if check:
                    raise HttpError(372, f"Session {session_id} not found (SESSION_NOT_FOUND)")
                conn = self._sessions[session_id] = Conn(self.path, session_id, timeout)
            conn.timeout = timeout
            conn.last_used = time.monotonic()
        # Real ClickHouse answers 373 SESSION_IS_LOCKED at once; we wait instead so that
        # one clickhouse-connect client shared by several threads works.
        if not conn.lock.acquire(timeout=wait):
            raise HttpError(373, f"Session {session_id} is locked by a concurrent client.")
        try:
            yield conn
        finally:
            conn.last_used = time.monotonic()
            conn.lock.release()

    def expire_sessions(self) -> None:
        now = time.monotonic()
        with self._lock:
            for sid, conn in list(self._sessions.items()):
                if now - conn.last_used > conn.timeout and conn.lock.acquire(blocking=False):
                    del self._sessions[sid]
                    conn.close()
                    conn.lock.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = self._pool + list(self._sessions.values())
            self._pool, self._sessions = [], {}
        for conn in conns:
            # a request still running after the drain grace keeps its connection (and with it
            # the engine) until process exit rather than having it closed underneath
            if conn.lock.acquire(timeout=1.0):
                conn.close()
                conn.lock.release()
            else:
                log.warning("session %s still busy at shutdown; not closed", conn.session_id)
        self._anchor.close()
