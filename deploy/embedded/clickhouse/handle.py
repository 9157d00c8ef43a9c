"""Process handle for tests and the dev supervisor: start/stop/kill the server subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Self

_REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedClickHouse:
    """Runs `python -m deploy.embedded.clickhouse` as a subprocess.

    stop() is graceful (SIGTERM: finish in-flight requests, close the engine, then SIGKILL
    after `grace`); kill() is SIGKILL for fault-injection tests. Server logs go to
    `log_path` if given, else to this process's stderr.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 8123,
        *,
        log_path: Path | None = None,
        extra_args: list[str] | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.log_path = log_path
        self.extra_args = list(extra_args or [])
        self._proc: subprocess.Popen | None = None
        self._log: IO | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=timeout) as resp:
                return resp.status == 200 and resp.read() == b"Ok.\n"
        except (OSError, urllib.error.URLError):
            return False

    def start(self, timeout: float = 30) -> Self:
        if self.running:
            return self
        cmd = [
            sys.executable,
            "-m",
            "deploy.embedded.clickhouse",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        if self.log_path is not None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._proc = subprocess.Popen(
            cmd,
            cwd=str(_REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise RuntimeError(f"embedded ClickHouse exited with code {code} during start-up")
            if self.ping(timeout=0.5):
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"embedded ClickHouse did not answer {self.url}/ping within {timeout}s")

    def stop(self, grace: float = 10) -> int | None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._reap()

    def send_kill(self) -> None:
        """SIGKILL without waiting for the process (safe in a signal handler); stop() reaps it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)

    def kill(self) -> int | None:
        """SIGKILL without any shutdown (fault injection)."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        return self._reap()

    def _reap(self) -> int | None:
        code = self._proc.returncode if self._proc else None
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
