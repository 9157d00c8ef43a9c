"""HTTP-protocol helpers: request bodies, Content-Encoding, SQL/data split, error mapping.

Pure functions with no chdb import, so they are cheap to unit-test.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

READ_SIZE = 1 << 20


class HttpError(Exception):
    """An error answered in ClickHouse style: status, exception code, message."""

    def __init__(self, code: int, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status or http_status_for(code)
        self.body = (
            message if message.startswith("Code: ") else f"Code: {code}. DB::Exception: {message}"
        )


# ---------------------------------------------------------------- request body


def iter_raw_body(rfile: BinaryIO, headers) -> Iterator[bytes]:
    """Yield the raw (still encoded) request body: Content-Length or chunked."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        while True:
            line = rfile.readline(65537)
            if not line:
                raise HttpError(33, "Unexpected end of chunked request body", 400)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise HttpError(27, f"Invalid chunk size line {line[:40]!r}", 400) from None
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            remaining = size
            while remaining:
                data = rfile.read(min(remaining, READ_SIZE))
                if not data:
                    raise HttpError(33, "Unexpected end of chunked request body", 400)
                remaining -= len(data)
                yield data
            rfile.readline(3)  # CRLF after the chunk
        return
    remaining = int(headers.get("Content-Length") or 0)
    while remaining > 0:
        data = rfile.read(min(remaining, READ_SIZE))
        if not data:
            raise HttpError(33, "Unexpected end of request body", 400)
        remaining -= len(data)
        yield data


def _multi_frame(chunks: Iterable[bytes], factory) -> Iterator[bytes]:
    """Decode back-to-back frames/members; `factory()` returns a fresh decompressor."""
    dec = None
    for chunk in chunks:
        while chunk:
            if dec is None:
                dec = factory()
            out = dec.decompress(chunk)
            if out:
                yield out
            if dec.eof:
                chunk = dec.unused_data
                dec = None
            else:
                chunk = b""
    if dec is not None and not dec.eof:
        raise HttpError(354, "Compressed request body is truncated (incomplete frame)", 400)


def decode_body(chunks: Iterable[bytes], encoding: str | None) -> Iterator[bytes]:
    """Incrementally decompress a request body according to Content-Encoding."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity", "none"):
        return iter(chunks)
    if enc == "lz4":
        import lz4.frame

        return _multi_frame(chunks, lz4.frame.LZ4FrameDecompressor)
    if enc in ("zstd", "zstandard"):
        import zstandard

        return _multi_frame(chunks, zstandard.ZstdDecompressor().decompressobj)
    if enc in ("gzip", "x-gzip", "deflate"):
        # wbits 32+15 auto-detects gzip or zlib headers; several gzip members are allowed.
        return _multi_frame(chunks, lambda: zlib.decompressobj(32 + zlib.MAX_WBITS))
    if enc == "br":
        try:
            import brotli  # noqa: F401
        except ImportError:
            raise HttpError(
                48, "Content-Encoding br is not supported by this server", 501
            ) from None
        return _multi_frame(chunks, lambda: _BrotliAdapter())
    raise HttpError(48, f"Unknown Content-Encoding: {encoding}", 501)


class _BrotliAdapter:
    def __init__(self):
        import brotli

        self._d = brotli.Decompressor()
        self.unused_data = b""

    @property
    def eof(self) -> bool:
        return self._d.is_finished()

    def decompress(self, data: bytes) -> bytes:
        return self._d.process(data)


# ---------------------------------------------------------------- SQL scanning

_TOKEN = re.compile(
    rb"(?P<ws>\s+)|(?P<lc>--[^\n]*(?:\n|$)|\#[^\n]*(?:\n|$))|(?P<bc>/\*.*?\*/)"
    rb"|(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<qi>\"(?:[^\"\\]|\\.|\"\")*\")|(?P<bq>`(?:[^`\\]|\\.|``)*`)"
    rb"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<lp>[(\[])|(?P<rp>[)\]])|(?P<other>.)",
    re.DOTALL,
)
NEED_MORE = object()


def _tokens(buf: bytes, pos: int = 0):
    """Yield (kind, start, end); kind 'open' marks an unterminated quote/comment."""
    n = len(buf)
    while pos < n:
        m = _TOKEN.match(buf, pos)
        assert m is not None  # the pattern matches any single byte
        kind = m.lastgroup
        if kind == "other" and (m.group() in (b"'", b'"', b"`") or buf.startswith(b"/*", pos)):
            yield "open", pos, n
            return
        yield kind, m.start(), m.end()
        pos = m.end()


def split_insert(buf: bytes, eof: bool):
    """Decide how the SQL text in `buf` (query param + body head) is executed.

    Returns NEED_MORE, ("query",) for a plain statement (the whole body is SQL), or
    ("insert", header, fmt, data_start) for INSERT ... FORMAT x / VALUES with inline data.
    """
    toks = _tokens(buf)
    first = None
    depth = 0
    prev_word = b""
    for kind, s, e in toks:
        if kind == "open":
            return NEED_MORE if not eof else ("query",)
        if kind in ("ws", "lc", "bc"):
            continue
        if first is None:
            if kind != "word" or buf[s:e].upper() != b"INSERT":
                return ("query",)
            first = True
            continue
        if kind == "lp":
            depth += 1
        elif kind == "rp":
            depth -= 1
        elif kind == "word" and depth == 0:
            w = buf[s:e].upper()
            if w in (b"SELECT", b"WITH") or (w == b"INFILE" and prev_word == b"FROM"):
                return ("query",)
            if w == b"VALUES":
                return ("insert", buf[:s].decode("utf-8", "replace").strip(), "Values", e)
            if w == b"FORMAT":
                for kind2, s2, e2 in toks:
                    if kind2 in ("ws", "lc", "bc"):
                        continue
                    if kind2 != "word":
                        return ("query",)
                    fmt = buf[s2:e2].decode()
                    if e2 == len(buf) and not eof:
                        return NEED_MORE  # the format name may continue
                    p = e2
                    while p < len(buf) and buf[p : p + 1] in (b" ", b"\t", b"\f"):
                        p += 1
                    if p == len(buf) and not eof:
                        return NEED_MORE
                    if buf[p : p + 1] == b"\r":
                        p += 1
                    if buf[p : p + 1] == b"\n":
                        p += 1
                    return ("insert", buf[:s].decode("utf-8", "replace").strip(), fmt, p)
                return NEED_MORE if not eof else ("query",)
            prev_word = w
    return NEED_MORE if not eof else ("query",)


def output_format(sql: bytes | str, default: str) -> str:
    """The output format of a statement: its last top-level FORMAT clause, else `default`."""
    buf = sql.encode() if isinstance(sql, str) else sql
    if b"format" not in buf.lower():
        return default
    fmt, depth, want = default, 0, False
    for kind, s, e in _tokens(buf):
        if kind in ("ws", "lc", "bc"):
            continue
        if kind == "lp":
            depth += 1
        elif kind == "rp":
            depth -= 1
        elif kind == "word" and depth == 0:
            if want:
                fmt = buf[s:e].decode()
                want = False
                continue
            want = buf[s:e].upper() == b"FORMAT"
            continue
        want = False
    return fmt


# ---------------------------------------------------------------- errors

_CODE_RE = re.compile(r"Code:\s*(\d+)")

_HTTP_400 = {
    6,
    8,
    10,
    16,
    20,
    25,
    26,
    27,
    32,
    33,
    36,
    38,
    41,
    42,
    43,
    44,
    47,
    50,
    53,
    62,
    69,
    70,
    72,
    115,
    117,
    130,
    131,
    179,
    184,
    190,
    215,
    352,
    386,
    456,
    457,
    472,
    473,
    475,
    691,
}
_HTTP_404 = {46, 60, 73, 81, 372}


def http_status_for(code: int) -> int:
    """Mirror ClickHouse's exceptionCodeToHTTPStatus (never 429/503/504: clients retry those)."""
    if code in (194, 516, 192):
        return 401
    if code in (164, 497, 291):
        return 403
    if code in _HTTP_404:
        return 404
    if code in _HTTP_400:
        return 400
    if code in (48, 1):
        return 501
    return 500


def error_from_exception(exc: BaseException) -> HttpError:
    """Turn a chdb exception into an HttpError carrying the ClickHouse code and text."""
    if isinstance(exc, HttpError):
        return exc
    text = str(exc)
    idx = text.find("Code: ")
    if idx >= 0:
        text = text[idx:]
    m = _CODE_RE.match(text)
    code = int(m.group(1)) if m else 1001  # STD_EXCEPTION
    if not m:
        text = f"Code: {code}. DB::Exception: {text}"
    return HttpError(code, text.strip())


def parse_form(raw: bytes, content_type: str) -> dict[str, str]:
    """Fields of a multipart/form-data body: clickhouse-connect sends `query` and large
    `param_*` values this way. External-data file parts are not supported."""
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    if not message.is_multipart():
        raise HttpError(62, "Malformed multipart/form-data body", 400)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            raise HttpError(48, "External data tables (file parts) are not supported here")
        if name:
            fields[str(name)] = part.get_payload(decode=True).decode("utf-8")
    return fields
