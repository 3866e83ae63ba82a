"""The ASGI lifespan of a worker: what each worker does when it starts.

Work that a killed worker left half done is cleaned up by the next worker to start (any of
them: several may start at once, and each step is safe to run twice):
- the partial files of its uploads are removed, each audited (files/sweep.py);
- its crawls are marked failed, each audited (knowledge/services/crawls.py);
- its open-socket gauges stop counting in the shared metrics (autobot/metrics.py).
They run before the worker reports itself started, so it serves nothing until they are done; a
step that fails is logged and the worker starts anyway (a database briefly down must not keep
every worker from starting).
"""

from __future__ import annotations

import asyncio
import logging

from autobot import metrics
from autobot.lanes import lane_context

log = logging.getLogger("autobot.lifespan")


def _startup_steps() -> list:
    from files.sweep import uploads_sweep
    from knowledge.services.crawls import crawls_end_orphans

    return [("sweep interrupted uploads", uploads_sweep), ("end interrupted crawls", crawls_end_orphans),
            ("forget dead workers' gauges", _forget_dead_workers)]


async def _forget_dead_workers() -> None:
    await asyncio.to_thread(metrics.forget_dead_workers)


async def on_startup() -> None:
    async with lane_context():
        for name, step in _startup_steps():
            try:
                await step()
            except Exception:
                log.exception("start-up step failed: %s", name)


async def lifespan_application(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await on_startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            metrics.worker_stopping()
            await send({"type": "lifespan.shutdown.complete"})
            return
