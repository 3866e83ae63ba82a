"""What both doors (MCP, A2A) share: the Host/Origin check and running handlers on the lanes.
(Their refusals are autobot.http.refuse, which the body cap uses too.)"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from autobot.lanes import lane_context


def header(scope, name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), "")


def allowed(scope) -> bool:
    """Host must be one Django would serve; Origin, when a browser sends one, too."""
    hosts = settings.ALLOWED_HOSTS
    host, _ = split_domain_port(header(scope, b"host"))
    if not host or not validate_host(host, hosts):
        return False
    origin = header(scope, b"origin")
    if origin:
        origin_host = urlsplit(origin).hostname or ""
        return bool(origin_host) and validate_host(origin_host, hosts)
    return True


def on_lanes(method):
    """Run `method`'s database work on the lanes, in a lane context of its own. The SDKs call
    handlers from tasks that are not the request's: the MCP session manager's task group (made
    at start-up) and the A2A task producer, which outlives the request that started it and
    serves the task's later messages too, after that request's lane context has exited."""

    @functools.wraps(method)
    async def wrapper(*args, **kwargs):
        async with lane_context():
            return await method(*args, **kwargs)

    return wrapper
