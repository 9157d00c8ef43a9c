"""The embedded ClickHouse (chdb behind ClickHouse's HTTP interface), tested with real clients.

No mocks: a real server subprocess on a free port, clickhouse-connect and raw httpx.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
import zlib

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from deploy.embedded.clickhouse import EmbeddedClickHouse, free_port

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    server = EmbeddedClickHouse(tmp_path_factory.mktemp("ch") / "data", port=free_port())
    server.start(timeout=60)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(ch):
    with httpx.Client(base_url=ch.url, timeout=30) as client:
        yield client


def _client(ch, **kw):
    return clickhouse_connect.get_client(host=ch.host, port=ch.port, **kw)


def _table(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_ping_and_root(http):
    r = http.get("/ping")
    assert r.status_code == 200 and r.text == "Ok.\n"
    assert http.get("/").text == "Ok.\n"


def test_raw_http_select_defaults_to_tabseparated(http):
    r = http.get("/", params={"query": "SELECT 1"})
    assert r.status_code == 200
    assert r.text == "1\n"
    assert r.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert r.headers["X-ClickHouse-Timezone"] == "UTC"
    assert r.headers["X-ClickHouse-Query-Id"]
    assert r.headers["X-ClickHouse-Server-Display-Name"]
    summary = json.loads(r.headers["X-ClickHouse-Summary"])
    assert all(isinstance(v, str) for v in summary.values()) and "read_rows" in summary
    r = http.get("/", params={"query": "SELECT 1 AS x", "default_format": "JSONEachRow"})
    assert r.text == '{"x":1}\n' and r.headers["X-ClickHouse-Format"] == "JSONEachRow"
    r = http.post("/", content=b"SELECT number FROM numbers(3) FORMAT CSV")
    assert r.text == "0\n1\n2\n" and r.headers["X-ClickHouse-Format"] == "CSV"
    r = http.get("/", params={"query": "SELECT {n:UInt8} + 1", "param_n": "41"})
    assert r.text == "42\n"
    # compression requested: answered uncompressed, without a Content-Encoding header
    r = http.get(
        "/",
        params={"query": "SELECT 7", "enable_http_compression": "1"},
        headers={"Accept-Encoding": "lz4, zstd, gzip, deflate"},
    )
    assert r.text == "7\n" and "Content-Encoding" not in r.headers


def test_raw_http_inserts_in_body_and_query_param(http):
    t = _table("raw")
    r = http.post(
        "/", content=f"CREATE TABLE {t} (id UInt32, s String) ENGINE = MergeTree ORDER BY id"
    )
    assert r.status_code == 200 and "X-ClickHouse-Format" not in r.headers
    body = f'INSERT INTO {t} FORMAT JSONEachRow\n{{"id": 1, "s": "a"}}\n{{"id": 2, "s": "b"}}\n'
    r = http.post("/", content=body.encode())
    assert r.status_code == 200, r.text
    assert json.loads(r.headers["X-ClickHouse-Summary"])["written_rows"] == "2"
    assert "X-ClickHouse-Format" not in r.headers
    # VALUES entirely in the body, and VALUES data in the body after a query param
    assert http.post("/", content=f"INSERT INTO {t} VALUES (3, 'c'), (4, 'd')").status_code == 200
    r = http.post("/", params={"query": f"INSERT INTO {t} VALUES"}, content=b"(5, 'e')")
    assert r.status_code == 200, r.text

    # query param with FORMAT, data in a chunked, gzip-compressed body
    def gen():
        yield gzip.compress(b"6,f\n")
        yield gzip.compress(b"7,g\n")  # two gzip members back to back

    r = http.post(
        "/",
        params={"query": f"INSERT INTO {t} FORMAT CSV"},
        content=gen(),
        headers={"Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    r = http.post(
        "/",
        params={"query": f"INSERT INTO {t} FORMAT CSV"},
        content=zlib.compress(b"8,h\n"),
        headers={"Content-Encoding": "deflate"},
    )
    assert r.status_code == 200, r.text
    r = http.get("/", params={"query": f"SELECT id, s FROM {t} ORDER BY id FORMAT CSV"})
    assert r.text.splitlines() == [f'{i},"{c}"' for i, c in zip(range(1, 9), "abcdefgh")]


@pytest.mark.parametrize("encoding", ["lz4", "zstd"])
def test_raw_http_multi_frame_compressed_chunked_insert(http, encoding):
    if encoding == "lz4":
        import lz4.frame

        compress = lz4.frame.compress
    else:
        zstandard = pytest.importorskip("zstandard")
        compress = zstandard.ZstdCompressor().compress
    t = _table(f"mf_{encoding}")
    http.post("/", content=f"CREATE TABLE {t} (id UInt32) ENGINE = MergeTree ORDER BY id")
    stmt = f"INSERT INTO {t} FORMAT TSV\n".encode()
    frames = [
        compress(stmt + b"1\n2\n"),
        compress(b"3\n"),
        compress(b"".join(b"%d\n" % i for i in range(4, 10_001))),
    ]
    blob = b"".join(frames)

    def gen():  # frames split at arbitrary points across HTTP chunks
        for i in range(0, len(blob), 777):
            yield blob[i : i + 777]

    r = http.post("/", content=gen(), headers={"Content-Encoding": encoding})
    assert r.status_code == 200, r.text
    r = http.get("/", params={"query": f"SELECT count(), sum(id) FROM {t}"})
    assert r.text == f"10000\t{sum(range(1, 10_001))}\n"


def test_raw_http_errors(http):
    r = http.get("/", params={"query": "SELECT * FROM no_such_table"})
    assert r.status_code == 404
    assert r.headers["X-ClickHouse-Exception-Code"] == "60"
    assert r.text.startswith("Code: 60. DB::Exception:")
    r = http.post("/", content=b"SELEC 1")
    assert r.status_code == 400 and r.headers["X-ClickHouse-Exception-Code"] == "62"
    r = http.get("/", params={"query": "CREATE TABLE ro_test (a Int8) ENGINE = Memory"})
    assert r.status_code == 403 and r.headers["X-ClickHouse-Exception-Code"] == "164"
    r = http.get("/", params={"query": "SELECT 1", "no_such_setting": "1"})
    assert r.headers["X-ClickHouse-Exception-Code"] == "115"
    assert r.status_code not in (429, 503, 504)
    r = http.post("/", content=b"SELECT 1; SELECT 2")
    assert r.status_code == 400 and r.headers["X-ClickHouse-Exception-Code"] == "62"
    r = http.get("/", params={"query": "SELECT 1", "session_id": "nope", "session_check": "1"})
    assert r.headers["X-ClickHouse-Exception-Code"] == "372"
    r = http.get("/", params={"query": "SELECT 1", "database": "no_such_db"})
    assert r.headers["X-ClickHouse-Exception-Code"] == "81"


def test_failed_insert_then_good_request_on_same_connection(http):
    t = _table("bad")
    http.post("/", content=f"CREATE TABLE {t} (id UInt32) ENGINE = MergeTree ORDER BY id")

    def body():  # bad data early, plenty of body left that the server must drain
        yield b"not-a-number\n"
        for _ in range(50):
            yield b"1\n" * 20_000

    r = http.post("/", params={"query": f"INSERT INTO {t} FORMAT CSV"}, content=body())
    assert r.status_code >= 400
    code = r.headers["X-ClickHouse-Exception-Code"]
    assert code.isdigit() and r.text.startswith(f"Code: {code}. DB::Exception:")
    r = http.get("/", params={"query": f"SELECT count() FROM {t}"})  # same keep-alive connection
    assert r.status_code == 200 and r.text == "0\n"


@pytest.mark.parametrize("compress", ["lz4", "zstd", "gzip", False, True])
def test_clickhouse_connect_roundtrip(ch, compress):
    admin = _client(ch)
    db = f"db_{uuid.uuid4().hex[:8]}"
    admin.command(f"CREATE DATABASE {db}")
    client = _client(ch, database=db, compress=compress)
    assert client.server_version.startswith("26.")
    assert client.command("SELECT 1") == 1
    client.command(
        "CREATE TABLE events (id UInt32, name String, ts DateTime, score Float64) "
        "ENGINE = MergeTree ORDER BY id"
    )
    rows = [(i, f"n{i}", 1_700_000_000 + i, i / 2) for i in range(5_000)]
    summary = client.insert("events", rows, column_names=["id", "name", "ts", "score"])
    assert summary.written_rows == 5_000
    res = client.query("SELECT count(), sum(id), max(name) FROM events")
    assert res.result_rows == [(5_000, sum(range(5_000)), "n999")]
    assert client.query("SELECT currentDatabase()").result_rows == [(db,)]
    assert client.query("SELECT {x:UInt32} + 1", parameters={"x": 5}).result_rows == [(6,)]
    pd = pytest.importorskip("pandas")
    df = client.query_df("SELECT id, name FROM events ORDER BY id LIMIT 3")
    assert isinstance(df, pd.DataFrame) and list(df["id"]) == [0, 1, 2]


def test_large_parameters_arrive_as_multipart_form_fields(ch):
    # clickhouse-connect moves big bound parameters into a multipart/form-data body.
    ids = [f"id-{i:05d}" for i in range(5000)]
    client = _client(ch)
    rows = client.query(
        "SELECT count() FROM (SELECT arrayJoin({ids:Array(String)}) AS x) WHERE x IN {ids:Array(String)}",
        parameters={"ids": ids},
    ).result_rows
    assert rows == [(5000,)]


def test_an_error_in_a_materialized_view_fails_the_insert(ch):
    # As on a server: the pipeline relies on a failed insert being reported, not swallowed.
    client = _client(ch)
    source, target = _table("mv_src"), _table("mv_dst")
    client.command(f"CREATE TABLE {source} (x Int64) ENGINE = MergeTree ORDER BY x")
    client.command(f"CREATE TABLE {target} (x Int64) ENGINE = MergeTree ORDER BY x")
    client.command(f"CREATE MATERIALIZED VIEW {target}_mv TO {target} AS "
                   f"SELECT throwIf(x = 42, 'boom') + x AS x FROM {source}")
    with pytest.raises(DatabaseError, match="boom"):
        client.insert(source, [[42]], column_names=["x"])
    client.insert(source, [[1]], column_names=["x"])
    assert client.query(f"SELECT sum(x) FROM {target}").result_rows == [(1,)]


def test_clickhouse_connect_sessions_and_temp_tables(ch):
    client = _client(ch, session_id=f"s-{uuid.uuid4()}")
    client.command("CREATE TEMPORARY TABLE tmp_x (a UInt8)")
    client.command("INSERT INTO tmp_x VALUES (1), (2)")
    assert client.query("SELECT count() FROM tmp_x").result_rows == [(2,)]
    client.command("SET max_threads = 3")
    assert client.command("SELECT getSetting('max_threads')") == 3
    other = _client(ch, session_id=f"s-{uuid.uuid4()}")
    with pytest.raises(DatabaseError):
        other.query("SELECT count() FROM tmp_x")
    # request-scoped settings do not leak into the session
    assert (
        client.command("SELECT getSetting('max_result_rows')", settings={"max_result_rows": 77})
        == 77
    )
    assert client.command("SELECT getSetting('max_result_rows')") == 0
    assert client.command("SELECT getSetting('max_threads')") == 3


def test_clickhouse_connect_errors_carry_code(ch):
    client = _client(ch)
    with pytest.raises(DatabaseError) as info:
        client.query("SELECT * FROM definitely_missing")
    assert "60" in str(info.value) and "UNKNOWN_TABLE" in str(info.value)
    with pytest.raises(DatabaseError) as info:
        client.command("SELEC 1")
    assert "62" in str(info.value)
    assert client.command("SELECT 2") == 2


def test_insert_deduplication_token(ch):
    client = _client(ch)
    t = _table("dedup")
    client.command(
        f"CREATE TABLE {t} (id UInt32, v String) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    rows = [(i, f"v{i}") for i in range(10)]
    for _ in range(2):
        client.insert(
            t, rows, column_names=["id", "v"], settings={"insert_deduplication_token": "t-0-0-9"}
        )
    assert client.command(f"SELECT count() FROM {t}") == 10
    client.insert(
        t, rows, column_names=["id", "v"], settings={"insert_deduplication_token": "t-0-0-10"}
    )
    assert client.command(f"SELECT count() FROM {t}") == 20
    # the token is request-scoped: a later insert without it is not deduplicated against it
    assert client.command("SELECT getSetting('insert_deduplication_token')") == ""


def test_insert_deduplication_through_materialized_view(ch):
    client = _client(ch)
    src, dst, mv = _table("src"), _table("dst"), _table("mv")
    client.command(
        f"CREATE TABLE {src} (id UInt32, k String) ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    client.command(
        f"CREATE TABLE {dst} (k String, n UInt64) ENGINE = MergeTree ORDER BY k "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    client.command(
        f"CREATE MATERIALIZED VIEW {mv} TO {dst} AS SELECT k, count() AS n FROM {src} GROUP BY k"
    )
    rows = [(i, "a" if i % 2 else "b") for i in range(10)]
    settings = {
        "insert_deduplication_token": "mv-1",
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }
    for _ in range(2):
        client.insert(src, rows, column_names=["id", "k"], settings=settings)
    assert client.command(f"SELECT count() FROM {src}") == 10
    assert client.query(f"SELECT k, sum(n) FROM {dst} GROUP BY k ORDER BY k").result_rows == [
        ("a", 5),
        ("b", 5),
    ]


def test_eight_threads_insert_and_query(ch):
    t = _table("conc")
    _client(ch).command(
        f"CREATE TABLE {t} (th UInt8, i UInt32) ENGINE = MergeTree ORDER BY (th, i)"
    )
    errors: list[BaseException] = []
    # one client shared by all threads (clickhouse-connect itself refuses concurrent use of a session)
    shared = _client(ch, autogenerate_session_id=False)

    def work(n: int):
        try:
            own = _client(ch, autogenerate_session_id=False)
            for j in range(5):
                own.insert(t, [(n, j * 1000 + k) for k in range(1000)], column_names=["th", "i"])
                assert (
                    own.query(f"SELECT count() FROM {t} WHERE th = {n}").result_rows[0][0]
                    == (j + 1) * 1000
                )
                assert shared.command("SELECT 1") == 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    assert not errors, errors
    assert _client(ch).command(f"SELECT count() FROM {t}") == 40_000
    print(f"8 threads x 5 x (1000-row insert + 2 queries): {elapsed:.2f}s")


def test_persistence_across_restart(tmp_path):
    data = tmp_path / "persist"
    with EmbeddedClickHouse(data, port=free_port()) as ch:
        client = _client(ch)
        client.command("CREATE TABLE kept (id UInt32) ENGINE = MergeTree ORDER BY id")
        client.insert("kept", [(i,) for i in range(123)], column_names=["id"])
    assert ch.pid is None
    ch2 = EmbeddedClickHouse(data, port=free_port())
    with ch2:
        assert _client(ch2).command("SELECT count() FROM kept") == 123
        # a SIGKILL loses nothing that was acknowledged
        _client(ch2).insert("kept", [(1000,)], column_names=["id"])
        ch2.kill()
        ch2.start()
        assert _client(ch2).command("SELECT count() FROM kept") == 124


def test_graceful_stop_finishes_in_flight_request(tmp_path):
    ch = EmbeddedClickHouse(tmp_path / "grace", port=free_port()).start()
    result: dict = {}

    def slow():
        with httpx.Client(base_url=ch.url, timeout=30) as c:
            result["r"] = c.get("/", params={"query": "SELECT sleep(1.5) + 1"})

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)
    code = ch.stop(grace=20)
    th.join()
    assert code == 0
    assert result["r"].status_code == 200 and result["r"].text == "1\n"
