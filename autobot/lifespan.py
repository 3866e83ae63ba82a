"""The ASGI lifespan of a worker: what each worker does when it starts and when it stops.

Start-up: work that a killed worker left half done is cleaned up by the next worker to start
(any of them: several may start at once, and each step is safe to run twice):
- the partial files of its uploads are removed, each audited (files/sweep.py);
- its crawls are marked failed, each audited (knowledge/services/crawls.py);
- its open-socket gauges stop counting in the shared metrics (autobot/metrics.py);
- the cgroups of its sandboxed terminals are removed once empty and a minute old (on this host:
  terminal/cgroup.py, ``sweep``; a live worker's sessions are never touched).
Then the worker's timers start (marking expired the operator approvals that ran out of time:
chat/operator/approvals.py, ``approvals_sweep``; watching that the layer's Redis still holds its
groups: autobot/layerwatch.py), and the MCP SDK's session manager
(interop/mcp_server.py); both stop at shutdown.
They run before the worker reports itself started, so it serves nothing until they are done; a
step that fails is logged and the worker starts anyway (a database briefly down must not keep
every worker from starting).

Shutdown: on SIGTERM uvicorn stops accepting, closes open WebSockets (code 1012, "service
restart", which the pages treat as a reason to reconnect), waits for in-flight requests, then
runs ``on_shutdown``: this worker's terminals end as ``shutdown`` (audited, recordings closed),
its answers in progress (set up or running) are stopped and stored as they stand (no new one is
admitted: 503 shutting_down), and its bus readers stop. Audit events are written synchronously
by the services, so none is left in a buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from autobot import layerwatch, metrics
from autobot.lanes import lane_context, spawn
from autobot.supervise import cancel_and_wait

log = logging.getLogger("autobot.lifespan")

SHUTDOWN_SECONDS = 20.0


def _startup_steps() -> list:
    from files.sweep import uploads_sweep
    from knowledge.services.crawls import crawls_end_orphans
    from terminal.services import cgroups_sweep

    return [("sweep interrupted uploads", uploads_sweep), ("end interrupted crawls", crawls_end_orphans),
            ("forget dead workers' gauges", _forget_dead_workers),
            ("sweep leftover terminal cgroups", cgroups_sweep)]


async def _forget_dead_workers() -> None:
    await asyncio.to_thread(metrics.forget_dead_workers)


async def on_startup() -> None:
    async with lane_context():
        for name, step in _startup_steps():
            try:
                await step()
            except Exception:
                log.exception("start-up step failed: %s", name)
    _start_timers()


_timers: set[asyncio.Task] = set()


def _start_timers() -> None:
    """The worker's periodic work, for its whole life (stopped at shutdown, within its budget)."""
    from chat.operator.approvals import approvals_sweep

    # Not a supervised reader: a failed round is logged and the next one tries again, without
    # making /api/health report the worker unwell over a housekeeping hiccup.
    _timers.add(spawn(approvals_sweep(), name="approvals-expiry"))
    layerwatch.epoch()  # starts the watch of the layer's Redis (autobot/layerwatch.py), if any


async def _stop_timers() -> None:
    tasks = list(_timers)
    _timers.clear()
    await cancel_and_wait(tasks)
    await layerwatch.stop()


async def on_shutdown() -> None:
    from agents.services import bus_shutdown
    from chat.generation import answers
    from terminal.services import sessions_shutdown

    steps = {"timers": _stop_timers(), "terminals": sessions_shutdown(), "answers": answers.stop_all(),
             "agents": bus_shutdown()}
    async with lane_context():
        results = await asyncio.wait_for(asyncio.gather(*steps.values(), return_exceptions=True),
                                         timeout=SHUTDOWN_SECONDS)
    for name, result in zip(steps, results, strict=True):
        if isinstance(result, BaseException):
            log.error("shutdown: stopping the %s failed: %r", name, result)


async def lifespan_application(scope, receive, send) -> None:
    # The MCP SDK's session manager (interop/mcp_server.py) runs for the worker's life: entered
    # at start-up and left at shutdown, in this one task, as its task group requires.
    async with contextlib.AsyncExitStack() as stack:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await on_startup()
                await stack.enter_async_context(_mcp_manager().run())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await on_shutdown()
                except Exception:  # the server stops either way; say what did not finish
                    log.exception("shutdown did not finish cleanly")
                metrics.worker_stopping()
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _mcp_manager():
    from interop.mcp_server import manager

    return manager
