"""ASGI entry point: Django for HTTP, the authenticated WebSocket router for sockets."""

import gc
import os

import django
from channels.routing import ProtocolTypeRouter

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autobot.settings")
django.setup(set_prefix=False)  # as get_asgi_application does, before importing code that uses models

from django.conf import settings  # noqa: E402

from autobot.handler import ASGIHandler  # noqa: E402

# Django's handler, without its two thread hops a request for requests on the lanes (autobot/handler.py).
django_asgi_app = ASGIHandler()

from autobot.bodylimit import BodyLimitMiddleware  # noqa: E402
from autobot.lanes import LaneMiddleware  # noqa: E402
from autobot.lifespan import lifespan_application  # noqa: E402
from autobot.watchdog import WatchdogMiddleware, preload  # noqa: E402
from autobot.ws import websocket_application  # noqa: E402
from files.asgi import StreamingUploadMiddleware  # noqa: E402
from interop.a2a_server import a2a_app, is_a2a  # noqa: E402
from interop.mcp_server import is_mcp, mcp_app  # noqa: E402


def _http_router(django_app):
    async def route(scope, receive, send):
        app = mcp_app if is_mcp(scope) else a2a_app if is_a2a(scope) else django_app
        await app(scope, receive, send)

    return route


YOUNG_COLLECTION_THRESHOLD = 10_000

preload()  # what the first request would import on the event loop (seconds of it)
# The cyclic garbage collector's full collections walk every live container object: after
# start-up that is ~230,000 of them (modules, classes, schemas, URL patterns), 100-300 ms a
# walk, on the event loop, whenever one falls due under load. None of them will ever be garbage, so
# move them out of its reach (docs/performance.md, "Target 3"). No collection first: there is
# no garbage to find at this point (one finds none), and it would cost the walk this avoids.
gc.freeze()
# With nothing left to find after start-up (every request frees what it made; tests/platform/
# test_no_cycles.py), a young collection only walks the objects of the requests in flight: at 100
# connections that was ~3-4 % of a list call's instructions with Python's first threshold of 700,
# ~1.5 % with 10,000 (docs/performance.md, "Twelfth round"). A cycle that does get made waits for
# at most 10,000 more allocations than before: memory stays bounded (measured flat over 20,000 calls).
gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])

# The event-loop watchdog (autobot/watchdog.py) starts with the first scope: the lifespan's, at start-up.
application = WatchdogMiddleware(ProtocolTypeRouter({
    # File uploads bypass Django's whole-body buffering and stream to disk (see files/asgi.py).
    # Each request's sync work runs on one of a few long-lived threads (see autobot/lanes.py).
    # /mcp (MCP SDK), /a2a and /.well-known/agent-card.json (A2A SDK) go in front of Django (interop/).
    # Bodies read whole (by Django, and by the MCP and A2A SDKs) are capped first (autobot/bodylimit.py).
    "http": LaneMiddleware(StreamingUploadMiddleware(BodyLimitMiddleware(_http_router(django_asgi_app)))),
    "websocket": websocket_application(),
    # Start-up cleans up what a killed worker left; shutdown ends terminals audited and stores
    # answers as they stand (autobot/lifespan.py).
    "lifespan": lifespan_application,
}), settings.LOOP_WATCHDOG_MS)
