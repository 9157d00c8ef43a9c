"""uvicorn workers that each listen on a socket of their own (SO_REUSEPORT).

uvicorn's multi-worker mode shares one listening socket: the worker that wakes first accepts
every connection waiting, so a client opening many keep-alive connections at once can leave one
worker with most of the work (the bench saw one of two workers do 86 % of it). With one
SO_REUSEPORT socket per worker slot, Linux hashes each new connection to a slot instead.

The supervisor is uvicorn's own (signals, health checks, replacing dead workers); only the
socket each worker gets differs. The parent keeps the slot sockets open, so a replacement
worker takes over its slot's socket together with the connections queued on it meanwhile.
"""

from __future__ import annotations

import logging
import socket

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("ksp.ingest")


def reuse_port_supported(port: int) -> bool:
    """Port 0 would give every worker a different ephemeral port."""
    return port != 0 and hasattr(socket, "SO_REUSEPORT")


def slot_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class ReusePortSupervisor(Multiprocess):
    """uvicorn's `Multiprocess`, with worker i always serving `slots[i]`."""

    def __init__(self, config: Config, slots: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.slots = slots
        self.processes_num = len(slots)

    def _spawn(self, slot: int) -> Process:
        process = Process(self.config, [self.slots[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._spawn(i) for i in range(self.processes_num)]

    def restart_all(self) -> None:
        """SIGHUP: replace each worker, bringing its replacement up before retiring the old one."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                log.error("replacement worker not ready in time; restart aborted")
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung or dead
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # would fail the same way on every restart
                log.error("worker %s failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("worker %s died; replacing it", process.pid)
            self.processes[slot] = self._spawn(slot)


def serve_workers(config: Config, host: str, port: int) -> None:
    slots = [slot_socket(host, port) for _ in range(config.workers)]
    log.info("listening", extra={"host": host, "port": port, "workers": len(slots), "reuse_port": True})
    try:
        ReusePortSupervisor(config, slots).run()
    finally:
        for sock in slots:
            sock.close()
