"""`ksp run`: the whole pipeline as one supervised process tree on the embedded defaults.

Order: broker, ClickHouse, migrations, topics, services, demo traffic. A child that dies
takes the stack down (loudly); Ctrl-C or SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen

from deploy.embedded.clickhouse import EmbeddedClickHouse
from deploy.embedded.kafka import EmbeddedKafka
from deploy.embedded.process import ManagedProcess, free_port

KSP = [sys.executable, "-m", "services.cli"]
DEMO_RULES = Path(__file__).resolve().parents[1] / "profiles" / "demo-rules.yaml"
INCIDENT_AFTER_S = 40


@dataclass(frozen=True)
class StackPorts:
    kafka: int = 9092
    clickhouse: int = 8123
    ingest: int = 8000
    alerts: int = 8001
    scoring_web: int = 6066


class AlertPrinter(BaseHTTPRequestHandler):
    """The demo's webhook receiver: prints each delivered alert."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        for alert in body.get("alerts", [body]):
            print(f"ALERT [{alert.get('severity')}] {alert.get('status')}: {alert.get('summary')}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Stack:
    def __init__(self, data_dir: Path, ports: StackPorts, demo_rate: float) -> None:
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.ports = ports
        self.demo_rate = demo_rate
        self.kafka: EmbeddedKafka | None = None
        self.clickhouse: EmbeddedClickHouse | None = None
        self.children: list[ManagedProcess] = []
        self._stop = threading.Event()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KSP_PROFILE": "dev",
            "KSP_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{self.ports.kafka}",
            "KSP_CLICKHOUSE__URL": f"http://127.0.0.1:{self.ports.clickhouse}",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._step("starting embedded Kafka (Tansu)")
        self.kafka = EmbeddedKafka(port=self.ports.kafka, log_path=self.logs / "kafka.log").start()
        self._step("starting embedded ClickHouse (chdb)")
        self.clickhouse = EmbeddedClickHouse(self.data_dir / "clickhouse", port=self.ports.clickhouse)
        self.clickhouse.start()
        self._run_once("migrate")
        self._run_once("topics")
        receiver = self._start_alert_printer()
        env = self.env() | {"KSP_WEBHOOK_URLS": json.dumps([receiver]), "KSP_RULES_PATH": str(DEMO_RULES)}
        self._spawn("ingest", ["ingest"], env | {"KSP_PORT": str(self.ports.ingest)})
        self._spawn("scoring", ["scoring"], env | {"KSP_WEB_PORT": str(self.ports.scoring_web)})
        self._spawn("alerts", ["alerts"], env | {"KSP_API_PORT": str(self.ports.alerts)})
        self._wait_http(f"http://127.0.0.1:{self.ports.ingest}/readyz", "ingest")
        self._wait_http(f"http://127.0.0.1:{self.ports.alerts}/healthz", "alerts")
        if self.demo_rate > 0:
            self._spawn("simulator", ["simulate", "--url", f"http://127.0.0.1:{self.ports.ingest}",
                                      "--rate", str(self.demo_rate), "--incident-after", str(INCIDENT_AFTER_S)],
                        env, to_console=True)

    def run_forever(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            self.start()
            self._banner()
            while not self._stop.wait(1.0):
                dead = [c for c in self.children if not c.alive()]
                if dead:
                    print(f"\n{dead[0].name} exited unexpectedly; see {dead[0].log_path}", file=sys.stderr)
                    raise SystemExit(1)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        # a second Ctrl-C (or SIGTERM) while stopping kills what is left at once; left to raise
        # KeyboardInterrupt, it would end the stop half-way and leave processes running
        signal.signal(signal.SIGINT, lambda *_: self._kill_all())
        signal.signal(signal.SIGTERM, lambda *_: self._kill_all())
        print("\nstopping ... (Ctrl-C again to kill everything at once)", flush=True)
        for child in reversed(self.children):
            child.stop(grace=15)
        if self.clickhouse:
            self.clickhouse.stop()
        if self.kafka:
            self.kafka.stop()
        print("stopped; nothing left running.", flush=True)

    def _kill_all(self) -> None:
        """SIGKILL to every process of the stack, without waiting (a signal handler): the stop
        in progress then finds them gone and reaps them."""
        print("\nkilling what is left ...", flush=True)
        for child in self.children:
            child.signal(signal.SIGKILL)
        if self.clickhouse:
            self.clickhouse.send_kill()
        if self.kafka:
            self.kafka.process.signal(signal.SIGKILL)

    def _spawn(self, name: str, args: list[str], env: dict[str, str], to_console: bool = False) -> None:
        child = ManagedProcess(name, KSP + args, env=env, log_path=None if to_console else self.logs / f"{name}.log")
        child.start()
        self.children.append(child)

    def _run_once(self, command: str) -> None:
        import subprocess

        self._step(f"ksp {command}")
        subprocess.run(KSP + [command], env=self.env(), check=True)

    def _start_alert_printer(self) -> str:
        port = free_port()
        server = ThreadingHTTPServer(("127.0.0.1", port), AlertPrinter)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port}/alerts"

    def _wait_http(self, url: str, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"{name} not ready at {url}; see {self.logs}")

    @staticmethod
    def _step(text: str) -> None:
        print(f"==> {text}", flush=True)

    def _banner(self) -> None:
        p = self.ports
        query = "SELECT+touchpoint,count(),round(avg(sqi),1)+FROM+kundensprechen.feedback_events+GROUP+BY+touchpoint"
        print(f"""
Kundensprechen is running (logs in {self.logs}).

  Ingest API     http://127.0.0.1:{p.ingest}/v1/feedback   (docs: http://127.0.0.1:{p.ingest}/docs)
  ClickHouse     http://127.0.0.1:{p.clickhouse}/
                 curl -s 'http://127.0.0.1:{p.clickhouse}/?query={query}'
  Ops console    http://127.0.0.1:{p.alerts}/
  Alerts API     http://127.0.0.1:{p.alerts}/v1/alerts   (docs: http://127.0.0.1:{p.alerts}/docs)
  Metrics        http://127.0.0.1:{p.ingest}/metrics  http://127.0.0.1:{p.scoring_web}/metrics  http://127.0.0.1:{p.alerts}/metrics
  Kafka          127.0.0.1:{p.kafka}

Demo traffic: {self.demo_rate:g} events/s; an incident starts at unit hamburg-altona after {INCIDENT_AFTER_S} s
(demo alert rules: {DEMO_RULES}).
Stop with Ctrl-C.
""", flush=True)
