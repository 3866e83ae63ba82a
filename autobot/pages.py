"""`@page`: a signed-in page as ONE job on a lane (autobot/lanes.py).

A page view written the usual way (`@login_required` on an async view that awaits
`request.auser()`, then `sync_to_async(render)`) costs three thread hops: the session read, the
user read and the rendering, and the template's `user` (the sync `request.user`) read the user a
second time. Under load every hop queues behind other requests' jobs. Here the view body is a
plain sync function, and the session, the user, `login_required`'s check and the rendering run
together in one lane job:

    @page
    def index(request):
        return render(request, "chat/index.html", {...})

What the page sees is unchanged: `request.user` and `await request.auser()` give the session's
user (read by `autobot.sessions.session_user`, Django's `get_user` steps), an anonymous visitor
is redirected to the login page with `?next=` exactly as `login_required` does (it is
`login_required` that decides), and the middleware around the view (CSRF cookie, messages,
session saving, CSP, security headers) runs as for any view. The view may set a status or
headers on its response as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from autobot.sessions import session_user


def page(view: Callable[..., HttpResponse]):
    """An async view running `view` (sync, signed-in users only) in one lane job.

    An async `view` (the dashboard, which awaits services) cannot be one job: the user is read
    in one, then `view` runs as usual, its `request.user` and `request.auser()` already known."""
    checked = login_required(view)
    if iscoroutinefunction(view):
        @wraps(view)
        async def async_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            await sync_to_async(attach_user)(request)
            return await checked(request, *args, **kwargs)

        return async_wrapper

    def job(request: HttpRequest, args, kwargs) -> HttpResponse:
        attach_user(request)
        return checked(request, *args, **kwargs)

    @wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return await sync_to_async(job)(request, args, kwargs)

    return wrapper


def attach_user(request: HttpRequest) -> None:
    """Read the session's user (sync: in a lane job) and hand it to both `request.user` and
    `request.auser()`, which would otherwise each read it again (AuthenticationMiddleware caches
    them apart)."""
    if not hasattr(request, "_cached_user"):
        request._cached_user = getattr(request, "_acached_user", None) or session_user(request)
    request._acached_user = request._cached_user
