"""GET /api/health: each dependency checked for real, with a timeout; 503 names what failed."""

import asyncio
import logging
import time
import uuid

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from autobot import lanes, layerwatch, supervise
from autobot.errors import AppError

log = logging.getLogger("autobot.health")


def _db_ping() -> None:
    # The kept connection may have died with a database restart (or outlived CONN_MAX_AGE): Django's
    # own check, as at a request's start, so the ping reports the database now, not an old socket.
    connection.close_if_unusable_or_obsolete()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()  # the next ping opens a fresh connection
        raise


async def check_database() -> None:
    # On a thread of its own, which keeps its connection: the lanes may have queues under load,
    # and the health check must report whether the database answers, not how long a queue is.
    # Reported straight to the loop (lanes.run_on): a chained concurrent future cost the probe
    # one more turn of a busy loop.
    await lanes.run_on(lanes.dedicated("health"), _db_ping)


async def check_channel_layer() -> None:
    """A real send/receive round trip on a fresh channel."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # The default prefix: channels-redis reads all of a process's own channels through one
    # receive loop keyed by that prefix, so a channel with another prefix waits behind it (and
    # times out) whenever a socket of this process is also waiting.
    channel = await layer.new_channel()
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned a different message")


async def check_redis() -> None:
    import redis.asyncio as redis

    client = redis.from_url(settings.REDIS_URL, socket_connect_timeout=settings.HEALTH_TIMEOUT_SECONDS)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def check_terminal_sandbox() -> None:
    from terminal.sandbox import health_check

    await health_check()


CHECKS = {"database": check_database, "channel_layer": check_channel_layer, "terminal_sandbox": check_terminal_sandbox}


def active_checks() -> dict:
    """The checks that apply to this configuration (Redis only when REDIS_URL is set)."""
    checks = dict(CHECKS)
    if settings.REDIS_URL:
        checks["redis"] = check_redis
    return checks


async def _run(check) -> dict:
    started = time.perf_counter()
    try:
        # A timeout around the check, not wait_for: wait_for (3.11) runs the check as a task of
        # its own, two more turns of the loop for every check, each a wait behind everything
        # else the loop has queued (issue 15, target 3: docs/performance.md).
        async with asyncio.timeout(settings.HEALTH_TIMEOUT_SECONDS):
            await check()
    except TimeoutError:
        log.warning("health check %s: no answer within %g s", check.__name__, settings.HEALTH_TIMEOUT_SECONDS)
        return {"status": "fail", "error": "timeout"}
    except AppError as exc:  # a known state with a public code (e.g. sandbox_unavailable)
        log.warning("health check %s: %s", check.__name__, exc.detail)
        return {"status": "fail", "error": exc.code}
    except Exception:  # a health check reports any failure, it never raises
        # The detail (host names, ports) goes to the log, not to the anonymous caller.
        log.warning("health check %s failed", check.__name__, exc_info=True)
        return {"status": "fail", "error": "error"}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 2)}


def readers_report() -> dict:
    """This process's supervised readers (autobot/supervise.py): a reader waiting to restart
    after an error means requests to agents or cancels are not being read, so it fails health."""
    stopped = supervise.not_running()
    if stopped:
        return {"status": "fail", "error": "not_running", "readers": stopped}
    return {"status": "ok", "running": len(supervise.readers())}


def replay_checks_report() -> str:
    """``skipped`` while this worker's agent replay checks skip a Redis that failed them
    (agents/seen.py), ``on`` otherwise. Informative: the Redis check itself decides the status."""
    from agents.seen import redis_skipped

    return "skipped" if redis_skipped() else "on"


def layer_watch_report() -> dict:
    """This process's watch of the channel layer's Redis (autobot/layerwatch.py). Informative: it
    never decides the status code, the channel layer's round trip does. Whenever the watch fails
    because Redis does not answer, that round trip (made now, not up to a round ago) fails too; they
    differ only for a round's time after Redis is back (the watch has not tried again yet), when a
    503 would take a worker that works out of its load balancer."""
    return layerwatch.report()


async def health_report() -> tuple[int, dict]:
    checks_to_run = active_checks()
    names = list(checks_to_run)
    results = await asyncio.gather(*(_run(checks_to_run[name]) for name in names))
    checks = dict(zip(names, results, strict=True))
    checks["readers"] = readers_report()
    if "redis" in checks:
        checks["redis"]["agents_replay_checks"] = replay_checks_report()
    failed = [name for name, result in checks.items() if result["status"] != "ok"]
    body = {"status": "fail" if failed else "ok", "checks": checks, "version": settings.VERSION,
            "layer_watch": layer_watch_report()}
    if failed:
        named = [f"readers ({', '.join(checks['readers']['readers'])})" if name == "readers" else name
                 for name in failed]
        body["detail"] = f"unhealthy: {', '.join(named)} failed"
        body["code"] = "unhealthy"
    return (503 if failed else 200), body
