"""`ksp run` (what `make run` starts) brings up the whole pipeline and stops without orphans."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx

from deploy.embedded.process import ManagedProcess, free_port
from tests.e2e.conftest import wait_until


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def count(clickhouse_port: int) -> int:
    try:
        response = httpx.get(f"http://127.0.0.1:{clickhouse_port}/",
                             params={"query": "SELECT count() FROM kundensprechen.feedback_events"}, timeout=5)
        return int(response.text) if response.status_code == 200 else 0
    except (httpx.HTTPError, ValueError):
        return 0


def drop_cases(alerts_port: int) -> list[dict]:
    try:
        response = httpx.get(f"http://127.0.0.1:{alerts_port}/v1/alerts",
                             params={"kind": "aggregate_drop", "unit": "hamburg-altona"}, timeout=5)
        return response.json().get("cases", []) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        return []


def ksp_run(tmp_path: Path, ports: dict[str, int], rate: int) -> tuple[ManagedProcess, Path]:
    log = tmp_path / "run.log"
    argv = [sys.executable, "-m", "services.cli", "run", "--data-dir", str(tmp_path / "data"), "--rate", str(rate),
            "--kafka-port", str(ports["kafka"]), "--clickhouse-port", str(ports["clickhouse"]),
            "--ingest-port", str(ports["ingest"]), "--alerts-port", str(ports["alerts"]),
            "--scoring-port", str(free_port())]
    run = ManagedProcess("ksp-run", argv, env=dict(os.environ), log_path=log)
    run.start()
    return run, log


def assert_no_orphans(tree: set[int]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.2)
    assert not [pid for pid in tree if alive(pid)], "orphans left behind"


def test_ksp_run_serves_demo_traffic_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("kafka", "clickhouse", "ingest", "alerts")}
    run, log = ksp_run(tmp_path, ports, rate=40)
    try:
        run.wait_ready(lambda: "Kundensprechen is running" in log.read_text(errors="replace"), timeout=120)
        text = log.read_text()
        assert f"http://127.0.0.1:{ports['ingest']}/docs" in text
        assert f"http://127.0.0.1:{ports['clickhouse']}/?query=" in text
        first = wait_until(lambda: count(ports["clickhouse"]), timeout=60, what="demo rows in ClickHouse")
        wait_until(lambda: count(ports["clickhouse"]) > first, timeout=30, what="the count to rise")
        drop = wait_until(lambda: drop_cases(ports["alerts"]), timeout=150,
                          what="a quality-drop alert for the simulator's degraded unit")
        assert drop[0]["alert"]["evidence"]["observed"] < drop[0]["alert"]["evidence"]["baseline"]
        tree = descendants(run.pid or 0)
        assert len(tree) >= 5  # broker, ClickHouse, ingest, scoring, alerts, simulator
    finally:
        assert run.popen is not None
        run.popen.send_signal(signal.SIGINT)
        run.popen.wait(90)
    assert_no_orphans(tree)
    assert "nothing left running" in log.read_text()


def test_a_second_ctrl_c_while_ksp_run_stops_kills_what_is_left_instead_of_leaving_it_running(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("kafka", "clickhouse", "ingest", "alerts")}
    run, log = ksp_run(tmp_path, ports, rate=0)
    assert run.popen is not None
    try:
        run.wait_ready(lambda: "Kundensprechen is running" in log.read_text(errors="replace"), timeout=120)
        tree = descendants(run.pid or 0)
        assert len(tree) >= 4  # broker, ClickHouse, ingest, scoring, alerts
        run.popen.send_signal(signal.SIGINT)
        run.wait_ready(lambda: "stopping ..." in log.read_text(errors="replace"), timeout=10)
        run.popen.send_signal(signal.SIGINT)  # impatient: while the services still shut down
        run.popen.wait(30)
    finally:
        run.stop(grace=5)
    assert_no_orphans(tree)
    text = log.read_text()
    assert "killing what is left" in text and "nothing left running" in text
