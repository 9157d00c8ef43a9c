"""ClickHouse HTTP interface (the subset clients use) served by a threaded http.server."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import socketserver
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from .protocol import (
    NEED_MORE,
    HttpError,
    decode_body,
    error_from_exception,
    iter_raw_body,
    parse_form,
    split_insert,
)

log = logging.getLogger("kundensprechen.embedded.clickhouse")

MAX_HEAD = 16 << 20  # an INSERT's SQL part must be found within this many bytes
# URL parameters that belong to the HTTP layer, not to the query's ClickHouse settings.
HTTP_ONLY = frozenset(
    [
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "buffer_size",
        "wait_end_of_query",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "client_protocol_version",
        "role",
        "stacktrace",
        "add_http_cors_header",
        "cancel_http_readonly_queries_on_client_close",
        "readonly",
    ]
)
DISPLAY_NAME = f"kundensprechen-embedded-{socket.gethostname()}"


def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f.startswith(("pretty", "vertical", "markdown", "values", "xml")):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


class _Body:
    """Raw request body iterator that knows whether it was fully consumed."""

    def __init__(self, rfile, headers):
        self._it = iter_raw_body(rfile, headers)
        self.done = False
        self.seen = False

    def __iter__(self):
        for chunk in self._it:
            self.seen = True
            yield chunk
        self.done = True

    def drain(self) -> bool:
        try:
            for _ in self:
                pass
        except Exception:  # noqa: BLE001 - broken body: caller closes the connection
            return False
        return self.done


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ClickHouse-chdb"
    timeout = 300  # idle keep-alive / stalled body
    wbufsize = 1 << 16
    server: Server

    def setup(self):
        super().setup()
        # NODELAY (and one write per response) avoids 40 ms delayed-ACK stalls
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.busy = False
        self.server.track(self, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self, False)

    def handle_expect_100(self):
        ok = super().handle_expect_100()
        self.wfile.flush()  # wfile is buffered: the interim 100 Continue must leave now
        return ok

    def log_message(self, format, *args):
        log.debug("%s - %s", self.address_string(), format % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_HEAD(self):
        self._reply(200, b"", {}, head=True)

    # ------------------------------------------------------------------ request
    def _dispatch(self, method: str) -> None:
        self.busy = True
        try:
            self._process(method)
        finally:
            self.busy = False
            if self.server.draining:
                self.close_connection = True

    def _process(self, method: str) -> None:
        url = urlsplit(self.path)
        body = _Body(self.rfile, self.headers)
        if url.path in ("/ping", "/replicas_status") or (
            url.path == "/" and not url.query and method == "GET"
        ):
            body.drain()
            self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        base = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
        }
        started = time.perf_counter()
        try:
            if url.path not in ("/", ""):
                raise HttpError(
                    0,
                    f"Code: 0. DB::Exception: There is no handle {url.path}. (UNKNOWN_HANDLER)",
                    404,
                )
            if params.get("decompress") in ("1", "true"):
                raise HttpError(
                    48, "decompress=1 (ClickHouse-native compressed body) is not supported"
                )
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                raw = b"".join(decode_body(body, self.headers.get("Content-Encoding")))
                params.update(parse_form(raw, content_type))
            outcome = self._execute(method, params, body)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a ClickHouse error
            err = error_from_exception(exc)
            if err.status >= 500 and not isinstance(exc, HttpError):
                log.info("query %s failed: %s", query_id, err.body.splitlines()[0][:300])
            if not body.drain():
                self.close_connection = True
            headers = dict(base)
            headers["X-ClickHouse-Exception-Code"] = str(err.code)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            self._reply(err.status, (err.body.rstrip("\n") + "\n").encode(), headers)
            return
        if not body.drain():
            self.close_connection = True
        headers = dict(base)
        summary = dict(outcome.summary)
        summary.setdefault("elapsed_ns", str(int((time.perf_counter() - started) * 1e9)))
        headers["X-ClickHouse-Summary"] = json.dumps(summary, separators=(",", ":"))
        if outcome.result_format:
            headers["X-ClickHouse-Format"] = outcome.result_format
            headers["Content-Type"] = _content_type(outcome.result_format)
        else:
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        self._reply(200, outcome.body, headers)

    def _execute(self, method: str, params: dict[str, str], body: _Body):
        qparam = params.get("query", "").encode()
        decoded = iter(decode_body(body, self.headers.get("Content-Encoding")))
        head, eof, joined = bytearray(qparam), False, not qparam
        while True:
            plan = split_insert(bytes(head), eof)
            if plan is not NEED_MORE:
                break
            chunk = next(decoded, None)
            if chunk is None:
                eof = True
                continue
            if not joined and chunk:
                head += b"\n"  # ClickHouse: query parameter, newline, then the body
                joined = True
            head += chunk
            if len(head) > MAX_HEAD:
                raise HttpError(
                    62, "Max query size exceeded while looking for the INSERT data start"
                )
        settings = {
            k: v
            for k, v in params.items()
            if k not in HTTP_ONLY and not k.startswith(("param_", "http_"))
        }
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database") or None
        session_id = params.get("session_id") or None
        try:
            timeout = min(float(params.get("session_timeout") or 60), 3600.0)
        except ValueError:
            raise HttpError(36, "Invalid session timeout") from None
        check = params.get("session_check") in ("1", "true")
        engine = self.server.engine
        if plan[0] == "insert":
            if method == "GET":
                raise HttpError(
                    164, "Cannot insert with method GET (readonly). Use POST. (READONLY)"
                )
            _, header, fmt, start = plan

            def chunks():
                if start < len(head):
                    yield bytes(head[start:])
                yield from decoded

            with engine.connection(session_id, timeout, check) as conn:
                return conn.insert(header, fmt, chunks(), database, settings)
        sql = bytes(head)
        rest = b"" if eof else b"".join(decoded)
        if rest:
            sql += rest if joined else b"\n" + rest
        if not sql.strip():
            raise HttpError(62, "Empty query. (SYNTAX_ERROR)", 400)
        fmt = params.get("default_format") or "TabSeparated"
        with engine.connection(session_id, timeout, check) as conn:
            return conn.execute(sql, fmt, qparams, database, settings, readonly_get=method == "GET")

    def _reply(self, status: int, payload: bytes, headers: dict[str, str], head: bool = False):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Keep-Alive", f"timeout={self.timeout}")
        self.end_headers()  # into the buffered wfile: headers and body leave in one write
        if not head:
            self.wfile.write(payload)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, engine):
        self.engine = engine
        self.draining = False
        self._handlers: set[Handler] = set()
        self._hlock = threading.Condition()
        super().__init__(address, Handler)

    def server_bind(self):  # skip HTTPServer's getfqdn(), which can stall on DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        """A client that went away mid-request is routine; anything else is logged."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s: %s", client_address, exc)
        else:
            log.exception("unhandled error serving %s", client_address)

    def track(self, handler: Handler, alive: bool) -> None:
        with self._hlock:
            (self._handlers.add if alive else self._handlers.discard)(handler)
            self._hlock.notify_all()

    def drain(self, grace: float) -> None:
        """Stop keep-alive connections once idle; wait for in-flight requests."""
        self.draining = True
        deadline = time.monotonic() + grace
        with self._hlock:
            while self._handlers and time.monotonic() < deadline:
                for h in list(self._handlers):
                    if not h.busy:
                        try:
                            h.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                self._hlock.wait(0.1)
            if self._handlers:
                log.warning(
                    "%d connection(s) still busy after %.0fs grace", len(self._handlers), grace
                )


def serve(host: str, port: int, data_dir: Path, grace: float = 30.0, pool_size: int = 16) -> int:
    """Run the server until SIGTERM/SIGINT; returns the process exit code."""
    from .engine import Engine

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = Engine(str(data_dir), pool_size=pool_size)
    except RuntimeError as exc:
        log.error(
            "cannot open the engine on %s (is another embedded ClickHouse using it?): %s",
            data_dir,
            exc,
        )
        return 1
    try:
        httpd = Server((host, port), engine)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc)
        engine.close()
        return 1
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log.info(
        "embedded ClickHouse %s (chdb) ready on http://%s:%d data_dir=%s pid=%d",
        engine.version,
        host,
        httpd.server_address[1],
        data_dir,
        os.getpid(),
    )
    while not stop.wait(5.0):
        engine.expire_sessions()
    httpd.shutdown()  # stop accepting
    httpd.drain(grace)
    httpd.server_close()
    engine.close()  # all chdb connections, then the engine: data flushed
    log.info("embedded ClickHouse stopped")
    return 0
