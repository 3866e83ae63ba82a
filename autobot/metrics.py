"""Prometheus metrics for the whole process (one registry; apps add their own metrics here)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

registry = CollectorRegistry()

http_requests = Counter(
    "autobot_http_requests_total", "HTTP requests served.", ["method", "route", "status"], registry=registry
)
http_latency = Histogram(
    "autobot_http_request_duration_seconds", "HTTP request latency.", ["method", "route"], registry=registry,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ws_connections = Gauge("autobot_websocket_connections", "Open WebSocket connections.", ["route"], registry=registry)
ws_rejected = Counter("autobot_websocket_rejected_total", "WebSocket connections refused.", ["reason"],
                      registry=registry)
loop_stalls = Counter("autobot_event_loop_stalls_total",
                      "Times the event loop was held past AUTOBOT_LOOP_WATCHDOG_MS.", registry=registry)


def render() -> bytes:
    return generate_latest(registry)
