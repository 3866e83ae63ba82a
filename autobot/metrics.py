"""Prometheus metrics (one registry; apps add their own metrics here), true across workers.

With several workers, a scrape reaches one of them (through the proxy, or uvicorn's shared
socket with `--workers`), so per-process numbers would show a random worker's share. When
``PROMETHEUS_MULTIPROC_DIR`` names a folder, prometheus_client's multiprocess mode is on: every
worker on the host writes its values to memory-mapped files there, and ``/metrics`` on any worker
adds up all of them (counters and histograms summed; open WebSockets summed over live workers).
docs/deployment.md says why this rather than a worker label.

The variable must be set before prometheus_client is imported (it chooses its value class then):
in the server's environment, as `make serve` and the systemd unit do, never in settings.
"""

import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)  # values are files there from the first metric on

registry = CollectorRegistry()

http_requests = Counter(
    "autobot_http_requests_total", "HTTP requests served.", ["method", "route", "status"], registry=registry
)
http_latency = Histogram(
    "autobot_http_request_duration_seconds", "HTTP request latency.", ["method", "route"], registry=registry,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# livesum: the sum over workers that run; a killed worker's sockets are gone with it.
ws_connections = Gauge("autobot_websocket_connections", "Open WebSocket connections.", ["route"], registry=registry,
                       multiprocess_mode="livesum")
ws_rejected = Counter("autobot_websocket_rejected_total", "WebSocket connections refused.", ["reason"],
                      registry=registry)
loop_stalls = Counter("autobot_event_loop_stalls_total",
                      "Times the event loop was held past AUTOBOT_LOOP_WATCHDOG_MS.", registry=registry)


def render() -> bytes:
    if MULTIPROC_DIR:
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=MULTIPROC_DIR)
        return generate_latest(every_worker)
    return generate_latest(registry)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def forget_dead_workers() -> list[int]:
    """Drop the live gauges of workers on this host that no longer run (a killed worker never
    says goodbye), so their last values stop counting. Run by each worker at start-up."""
    if not MULTIPROC_DIR:
        return []
    dead = set()
    for path in Path(MULTIPROC_DIR).iterdir():
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and int(match[1]) != os.getpid() and not os.path.exists(f"/proc/{match[1]}"):
            dead.add(int(match[1]))
    for pid in dead:
        mark_process_dead(pid, MULTIPROC_DIR)
    return sorted(dead)


def worker_stopping() -> None:
    """This worker's live gauges stop counting (graceful shutdown)."""
    if MULTIPROC_DIR:
        mark_process_dead(os.getpid(), MULTIPROC_DIR)
