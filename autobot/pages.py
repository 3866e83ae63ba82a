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

The job goes to the lane by `autobot.lanes.run` (a request on the lanes: every page served by
the application), not through asgiref's `sync_to_async`, whose wrapper cost ~40-60 µs of CPU a
page more. A view whose body calls async code (`async_to_sync`) says so, `@page(async_calls=True)`
(the dashboard): asgiref then runs it, so that the async code runs on the event loop and its own
sync calls come back to the job's thread, as `sync_to_async` arranges. Elsewhere (Django's test
client, which serves without the lanes) the job runs through `sync_to_async` as before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Permission
from django.db.models import BooleanField, CharField, Exists, Expression, ExpressionWrapper, OuterRef, Q
from django.http import HttpRequest, HttpResponse
from django.utils.formats import localize
from django.utils.translation import get_language

from autobot import lanes
from autobot.compiled import CompiledQuery, Param
from autobot.lanes import in_lane_request
from autobot.memo import Memo
from autobot.sessions import MODEL_BACKEND, session_user


def page(view: Callable[..., HttpResponse] | None = None, *, async_calls: bool = False):
    """An async view running `view` (sync, signed-in users only) in one lane job.

    An async `view` cannot be one job: the user is read in one, then `view` runs as usual, its
    `request.user` and `request.auser()` already known. (The dashboard, which awaits its health
    report, does that await first and then calls a sync `@page` view: autobot/views.py.)
    `async_calls`: the body calls `async_to_sync` (see the module docstring)."""
    if view is None:
        return lambda view: page(view, async_calls=async_calls)
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

    in_thread = sync_to_async(job)

    @wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if async_calls or not in_lane_request():
            return await in_thread(request, args, kwargs)
        return await lanes.run(job, request, args, kwargs)

    return wrapper


def attach_user(request: HttpRequest) -> None:
    """Read the session's user (sync: in a lane job) and hand it to both `request.user` and
    `request.auser()`, which would otherwise each read it again (AuthenticationMiddleware caches
    them apart).

    `request.user` becomes the user itself, as ninja's auth and Django's `login()` set it, in
    place of AuthenticationMiddleware's lazy stand-in: that would give the same object, but
    every attribute read through it (`login_required`'s `is_authenticated`, the template's
    `user.is_authenticated`, `is_staff`, `get_username`) raised and caught an AttributeError
    inside `SimpleLazyObject` first, ~35,000 instructions each."""
    if not hasattr(request, "_cached_user"):
        request._cached_user = getattr(request, "_acached_user", None) or session_user(request)
    request._acached_user = request._cached_user
    request.user = request._cached_user


# ---- a number as a template writes it ------------------------------------------------------------

_numbers = Memo(256, settings=True)


def number_text(value: int) -> str:
    """`{{ value }}` of a number, as the template writes it (`localize`: the active language's
    format, thousands separated if USE_THOUSAND_SEPARATOR), kept by the number and the language:
    each `{{ }}` of an int goes through `number_format` and three `get_format` lookups, ~20,000
    instructions, for the same text every time (a page's limits come from settings). A setting
    changed forgets everything. The text then renders as any string (escaping leaves it as is)."""
    key = (type(value), value, get_language())
    text = _numbers.get(key)
    if text is None:
        text = str(localize(value))
        _numbers.put(key, text)
    return text


# ---- permissions in one query ---------------------------------------------------------------



def holds_permission(user_id, app_label, codename) -> Expression:
    """SQL that is true when the user `user_id` (an `OuterRef` or a `Param`) holds the permission
    directly or through one of their groups: `ModelBackend`'s rule, `is_active` and
    `is_superuser` aside (the caller checks those, as `User.has_perm` and the backend do)."""
    user_model = get_user_model()
    wanted = Permission.objects.filter(content_type__app_label=app_label, codename=codename).values("pk")
    direct = user_model.user_permissions.through.objects.filter(user_id=user_id, permission_id__in=wanted)
    grouped = user_model.groups.through.objects.filter(user_id=user_id, group__permissions__in=wanted)
    return ExpressionWrapper(Q(Exists(direct)) | Q(Exists(grouped)), output_field=BooleanField())


def _permission_query() -> CompiledQuery:
    def build():
        user_model = get_user_model()
        text = CharField()
        held = holds_permission(OuterRef("pk"), Param("app_label", text), Param("codename", text))
        return user_model.objects.filter(pk=Param("user", user_model._meta.pk)).annotate(held=held).values_list("held")

    return CompiledQuery(build)


_PERMISSION = _permission_query()


def model_backend_only() -> bool:
    return list(settings.AUTHENTICATION_BACKENDS) == [MODEL_BACKEND]


def has_perm(user, perm: str, *, held: bool | None = None) -> bool:
    """`user.has_perm(perm)` in ONE query (Django's `ModelBackend` reads all the user's
    permissions and all their groups' in two, to fill `user._perm_cache`). Sync: in a lane job.

    The answer is kept on the user object, as Django keeps `_perm_cache`: for the rest of the
    request (the user is read afresh on every request, so a permission granted or taken away
    shows on the next one). Any configuration but the stock `ModelBackend` alone, or a user
    whose `_perm_cache` is already filled, is asked as Django would. `held`: the answer a query
    of the caller's already read (the dashboard's counts), taken instead of asking again."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if hasattr(user, "_perm_cache") or not model_backend_only():
        return user.has_perm(perm)
    known = user.__dict__.setdefault("_page_perm_cache", {})
    if held is not None:
        known[perm] = bool(held)
    if perm not in known:
        app_label, _, codename = perm.partition(".")
        rows = _PERMISSION.rows({"user": user.pk, "app_label": app_label, "codename": codename})
        known[perm] = bool(rows and rows[0][0])
    return known[perm]
