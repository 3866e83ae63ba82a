"""ASGI lifespan: what a worker does when the server starts and when it is asked to stop.

On SIGTERM uvicorn stops accepting, closes open WebSockets (code 1012, "service restart", which
the pages treat as a reason to reconnect), waits for in-flight requests, then runs the shutdown
below: this worker's terminals end as ``shutdown`` (audited, recordings closed), its answers in
progress are stopped and stored as they stand, and its bus readers stop. Audit events are
written synchronously by the services, so none is left in a buffer.
"""

import asyncio
import logging

log = logging.getLogger("autobot.lifespan")

SHUTDOWN_SECONDS = 20.0


async def shutdown() -> None:
    from agents.services import bus_shutdown
    from chat import generation
    from terminal.services import sessions_shutdown

    async def answers() -> None:
        running = list(generation._running.values())
        for gen in running:
            if gen.task is not None:
                gen.task.cancel()
        await asyncio.gather(*(gen.finished.wait() for gen in running))

    steps = {"terminals": sessions_shutdown(), "answers": answers(), "agents": bus_shutdown()}
    results = await asyncio.wait_for(asyncio.gather(*steps.values(), return_exceptions=True),
                                     timeout=SHUTDOWN_SECONDS)
    for name, result in zip(steps, results, strict=True):
        if isinstance(result, BaseException):
            log.error("shutdown: stopping the %s failed: %r", name, result)


async def lifespan_application(scope, receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            try:
                await shutdown()
            except Exception:  # the server stops either way; say what did not finish
                log.exception("shutdown did not finish cleanly")
            await send({"type": "lifespan.shutdown.complete"})
            return
