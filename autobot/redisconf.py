"""The Redis channel layer's configuration, in one place for settings, tests and benchmarks.

Why this exists: channels-redis waits for messages with a blocking ``BZPOPMIN`` of
``RedisChannelLayer.brpop_timeout`` seconds (5), and redis-py closes any read that lasts longer
than its ``socket_timeout``, whose default is also 5 s. With the defaults, every receive that
waits the full 5 s raises ``redis.exceptions.TimeoutError``: every WebSocket died 5 s after it
opened and every bus reader 5 s after its last message. The layer's connections therefore get a
read timeout that outlasts the blocking read by a clear margin, and a configuration whose read
timeout would not (``AUTOBOT_REDIS_SOCKET_TIMEOUT`` or a ``socket_timeout=`` in ``REDIS_URL``)
is refused at start-up.

No Django imports, so settings can use it.
"""

from urllib.parse import parse_qs, urlsplit

import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# What redis-py raises when Redis is away or too slow (after its own retries).
REDIS_FAULTS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# channels_redis.core.RedisChannelLayer.brpop_timeout (not imported: settings must stay cheap).
LAYER_BLOCKING_READ_SECONDS = 5
# The read timeout must exceed the blocking read by at least this much: a loaded Redis or
# network adds latency on top of the 5 s the server holds the read open.
MARGIN_SECONDS = 5


class RedisConfigError(ValueError):
    pass


def url_socket_timeout(url: str) -> float | None:
    """The ``socket_timeout`` given in the URL's query string (redis-py lets it override ours)."""
    values = parse_qs(urlsplit(url).query).get("socket_timeout")
    if not values:
        return None
    try:
        return float(values[-1])
    except ValueError:
        raise RedisConfigError(f"REDIS_URL: socket_timeout={values[-1]!r} is not a number") from None


def check_read_timeout(url: str, socket_timeout: float) -> float:
    """The read timeout the layer's connections will have; refuses one that the layer's
    blocking read would outlast. Names the setting to change."""
    from_url = url_socket_timeout(url)
    effective, source = (from_url, "socket_timeout in REDIS_URL") if from_url is not None else (
        socket_timeout, "AUTOBOT_REDIS_SOCKET_TIMEOUT")
    needed = LAYER_BLOCKING_READ_SECONDS + MARGIN_SECONDS
    if effective < needed:
        raise RedisConfigError(
            f"{source}={effective:g} is too short: the channel layer blocks for "
            f"{LAYER_BLOCKING_READ_SECONDS} s waiting for messages, so every idle socket and reader would fail. "
            f"Use at least {needed} seconds.")
    return effective


def channel_layer_config(url: str, *, socket_timeout: float = 30.0, connect_timeout: float = 5.0,
                         capacity: int = 1000, expiry: int = 60, prefix: str = "asgi") -> dict:
    """CHANNEL_LAYERS["default"] for channels-redis on ``url``."""
    check_read_timeout(url, socket_timeout)
    host = {
        "address": url,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        # TCP keepalive finds a peer that vanished (a Redis host rebooted) on idle connections.
        "socket_keepalive": True,
        # A pooled connection idle for this long is PINGed before reuse, so a connection that a
        # Redis restart closed is replaced instead of failing the next command.
        "health_check_interval": 15,
        # A connection a restart closed while it was in use fails its next command: retry that once
        # or twice on a new connection (connection errors only: a timeout is not retried, a slow
        # command must not run twice).
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [RedisConnectionError],
    }
    return {
        "BACKEND": "autobot.layers.RedisChannelLayer",  # cancel-safe receive (autobot/layers.py)
        "CONFIG": {"hosts": [host], "capacity": capacity, "expiry": expiry, "prefix": prefix},
    }
