import asyncio
import time

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db.models import IntegerField, OuterRef, Q, Subquery
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.timezone import localtime

from autobot import audit, metrics, throttle
from autobot.auth import token_authenticate_sync
from autobot.compiled import CompiledQuery, Param
from autobot.errors import Unavailable
from autobot.health import health_report
from autobot.http import client_ip
from autobot.models import ApiToken, AuditEvent
from autobot.pages import has_perm, holds_permission, page

COMING = {
    "chat": ("Chat", "Chat with a language model grounded in your knowledge base, with live token streaming "
                     "and citations."),
    "terminal": ("Terminal", "A real shell in the browser, with every command risk-assessed, allowed or "
                             "blocked by the session's security level, and recorded for audit."),
    "knowledge": ("Knowledge", "Notes, uploaded documents and crawled sites, with fast ranked search."),
    "files": ("Files", "Your own sandboxed files area with streaming uploads and downloads."),
    "agents": ("Agents", "The live registry of agents and their message feed, and a form to send them work."),
}


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def _typed_username(self) -> str:
        return (self.request.POST.get("username") or "")[:150]

    def _address(self) -> str:
        return client_ip(self.request) or ""

    def post(self, request, *args, **kwargs):
        # Checked before the form is: a locked-out attempt costs no password hash.
        try:
            wait = async_to_sync(throttle.login_wait)(username=self._typed_username(), address=self._address())
        except Unavailable as exc:
            return self._refused(exc.detail, status=503, retry_after=5)
        if wait > 0:
            async_to_sync(audit.record)(actor=None, action="auth.login_throttled",
                                        data={"username": self._typed_username()})
            minutes = max(1, round(wait / 60))
            message = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            return self._refused(message, status=429, retry_after=int(wait) + 1)
        return super().post(request, *args, **kwargs)

    def _refused(self, message: str, *, status: int, retry_after: int):
        context = self.get_context_data(form=self.form_class(self.request), throttled=message)
        response = self.render_to_response(context, status=status)
        response["Retry-After"] = str(retry_after)
        return response

    def form_valid(self, form):
        response = super().form_valid(form)
        try:
            async_to_sync(throttle.login_succeeded)(username=self._typed_username())
        except Unavailable:  # signed in already; the count then simply runs out with its window
            pass
        async_to_sync(audit.record)(actor=form.get_user(), action="auth.login")
        return response

    def form_invalid(self, form):
        # The username is recorded as typed (it may not exist); the password never is.
        async_to_sync(audit.record)(actor=None, action="auth.login_failed", data={"username": self._typed_username()})
        try:
            async_to_sync(throttle.login_failed)(username=self._typed_username(), address=self._address())
        except Unavailable as exc:
            return self._refused(exc.detail, status=503, retry_after=5)
        return super().form_invalid(form)


class LogoutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        user = request.user if request.user.is_authenticated else None
        response = super().post(request, *args, **kwargs)
        if user is not None:
            async_to_sync(audit.record)(actor=user, action="auth.logout")
        return response


def _setup() -> list[dict]:
    """What is configured and what is not, in words, with the setting that changes it (in a thread:
    looking for bwrap reads the file system)."""
    import shutil

    provider = settings.CHAT_LLM_PROVIDER or ("several" if settings.CHAT_LLM_PROVIDERS else "")
    rows = []
    if provider and provider != "offline":
        model = settings.CHAT_LLM_MODEL or "the provider's default"
        rows.append({"name": "Model provider", "ok": True, "text": f"{provider} · {model}"})
    else:
        rows.append({"name": "Model provider", "ok": False,
                     "text": "not configured: chat answers from the knowledge base only. "
                             "Set AUTOBOT_LLM_PROVIDER, AUTOBOT_LLM_BASE_URL and AUTOBOT_LLM_MODEL."})
    if settings.REDIS_URL:
        rows.append({"name": "Redis", "ok": True, "text": "configured: workers share sockets and limits"})
    else:
        rows.append({"name": "Redis", "ok": False,
                     "text": "not configured: fine for one server process; set REDIS_URL to run several"})
    if shutil.which("bwrap"):
        rows.append({"name": "Sandbox", "ok": True, "text": "bubblewrap is installed"})
    else:
        rows.append({"name": "Sandbox", "ok": False, "text": "bubblewrap (bwrap) is not installed"})
    return rows


# Each dashboard count links to the page where those things are.
COUNT_LINKS = {"chat sessions": "/chat/", "knowledge entries": "/knowledge/", "live terminal sessions": "/terminal/",
               "api tokens": "/tokens/", "audit events": "/admin/autobot/auditevent/", "users": "/admin/auth/user/"}


def _count_link(name: str, user) -> str | None:
    url = COUNT_LINKS.get(name)
    return url if url and (user.is_staff or not url.startswith("/admin/")) else None


class _Count(Subquery):
    """How many rows a queryset has, as a scalar subquery."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


def _counts_query(*, staff: bool) -> CompiledQuery:
    """The dashboard's figures in ONE query, one row, compiled once per shape (autobot/compiled.py).

    Each count is what the app's services count for this user, spelled here so that they cost
    one round trip, not ten (tests/platform/test_dashboard.py checks that they agree):
    chat.services.session_list (own sessions; all for staff), knowledge.services.stats's
    entries (own and shared; all for staff), terminal.services.session_list(status="live")
    (not ended; own, all for staff) and require_terminal (staff, or the permission), the API
    tokens not revoked, the audit events the dashboard lists (own; all for staff), the users.
    `own_live` says whether the live sessions need the stale pass (see `_live_terminals`)."""
    def build():
        from chat.models import ChatSession
        from knowledge.models import KnowledgeEntry
        from terminal.models import TerminalSession

        me = OuterRef("pk")
        live = TerminalSession.objects.exclude(status=TerminalSession.Status.ENDED)
        counted = {
            "chat sessions": ChatSession.objects.all() if staff else ChatSession.objects.filter(owner_id=me),
            "knowledge entries": (KnowledgeEntry.objects.all() if staff
                                  else KnowledgeEntry.objects.filter(Q(owner_id=me) | Q(shared=True))),
            "live terminal sessions": live if staff else live.filter(owner_id=me),
            "api tokens": ApiToken.objects.filter(user_id=me, revoked_at__isnull=True),
            "audit events": AuditEvent.objects.all() if staff else AuditEvent.objects.filter(actor_id=me),
            "own_live": live.filter(owner_id=me),
        }
        if staff:
            counted["users"] = User.objects.all()
        columns = {f"c{index}": _Count(rows.order_by().values("pk")) for index, rows in enumerate(counted.values())}
        if not staff:
            columns["terminal"] = holds_permission(me, "terminal", "use_terminal")
        return User.objects.filter(pk=Param("user", User._meta.pk)).annotate(**columns).values_list(*columns)

    return CompiledQuery(build)


_COUNT_NAMES = {
    False: ["chat sessions", "knowledge entries", "live terminal sessions", "api tokens", "audit events", "own_live"],
    True: ["chat sessions", "knowledge entries", "live terminal sessions", "api tokens", "audit events", "own_live",
           "users"],
}
_COUNTS = {staff: _counts_query(staff=staff) for staff in (False, True)}

# The latest audit events with the columns the dashboard shows (own; all for staff).
EVENT_FIELDS = ("created", "actor_name", "action", "target_type", "target_id", "ip")
_EVENTS = {
    staff: CompiledQuery(lambda staff=staff: (
        AuditEvent.objects.all() if staff else AuditEvent.objects.filter(actor_id=Param("user", User._meta.pk))
    ).order_by("-id").values_list(*EVENT_FIELDS))
    for staff in (False, True)
}
LATEST_EVENTS = 15


def _event_cells(created, actor_name, action, target_type, target_id, ip) -> dict:
    """An event row's cells as the template shows them, worked out here: the `date` filter and
    the `{% if %}`s cost ~0.1 ms a row in the template. `when` is the `date:"Y-m-d H:i:s"` of the
    time in the current time zone, `iso` the stored (UTC) time, as before."""
    return {"iso": created.isoformat(), "when": localtime(created).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": actor_name or "—", "action": action,
            "target": f"{target_type} #{target_id}" if target_id else target_type, "ip": ip or ""}


def _may_use_terminal(user, held: bool | None) -> bool:
    """terminal.services.require_terminal's rule (an active user who is staff or holds the
    permission), with `held` read by the counts query."""
    return (user.is_active and user.is_staff) or has_perm(user, "terminal.use_terminal", held=held)


def _live_terminals(user, live: int, own_live: int) -> int:
    """The live count, after ending the sessions whose server process is gone (what
    terminal.services.session_list does first: the user's own, everyone's for staff). Only asked
    when there are such live sessions to check, so an ordinary page load costs no further query."""
    if not (live if user.is_staff else own_live):
        return live
    from terminal import services as terminal

    return async_to_sync(_count_live)(user, terminal)


async def _count_live(user, terminal) -> int:
    return await (await terminal.session_list(user=user, status="live")).acount()


# The health card: /api/health's report, kept for a few seconds (see `_health`).
HEALTH_MAX_AGE = 5.0
_health_kept: tuple[float, int, dict] | None = None
_health_running: tuple[asyncio.AbstractEventLoop, asyncio.Task] | None = None


async def _health() -> tuple[int, dict]:
    """autobot.health.health_report, run at most once every HEALTH_MAX_AGE seconds per process.

    Each report is a database ping on a thread of its own, a channel-layer round trip, the
    sandbox check on a thread and, with REDIS_URL, a Redis ping: ~10 ms of CPU and several thread
    hops, which every dashboard load paid. A dashboard is a glance, so a report up to a few
    seconds old serves it; /api/health (monitoring, load balancers) still checks on every call.
    Concurrent loads while a report is running wait for that one (one report per event loop at a
    time: a task belongs to its loop, and tests run views on loops of their own)."""
    global _health_kept, _health_running
    kept = _health_kept
    if kept is not None and time.monotonic() - kept[0] < HEALTH_MAX_AGE:
        return kept[1], kept[2]
    loop = asyncio.get_running_loop()
    running = _health_running
    if running is None or running[0] is not loop or running[1].done():
        running = _health_running = (loop, loop.create_task(_fresh_health()))
    return await asyncio.shield(running[1])


async def _fresh_health() -> tuple[int, dict]:
    global _health_kept
    status, body = await health_report()
    _health_kept = (time.monotonic(), status, body)
    return status, body


async def dashboard(request):
    """Signed-in only. The health report (kept a few seconds, `_health`), then everything else
    (session, user, counts, events, setup, rendering) in one lane job. A visitor without a
    session cookie cannot be signed in: sent to the login form before any health check runs."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return redirect_to_login(request.get_full_path())
    status, health = await _health()
    return await _dashboard_page(request, health=health, healthy=status == 200)


# Signed-in only; session, user, figures and rendering in one lane job (autobot/pages.py), through
# asgiref: `_live_terminals` may call async code (`async_to_sync`).
@page(async_calls=True)
def _dashboard_page(request, *, health: dict, healthy: bool):
    from terminal import services as terminal

    user = request.user
    staff = user.is_staff
    row = _COUNTS[staff].rows({"user": user.pk})[0]
    counts = dict(zip(_COUNT_NAMES[staff], row, strict=False))
    own_live = counts.pop("own_live")
    held = None if staff else row[-1]
    if _may_use_terminal(user, held):
        counts["live terminal sessions"] = _live_terminals(user, counts["live terminal sessions"], own_live)
    else:  # no terminal permission: nothing to count
        del counts["live terminal sessions"]
    warnings = terminal.operator_warnings_sync() if staff else []
    linked = [{"name": name, "value": value, "url": _count_link(name, user)} for name, value in counts.items()]
    events = [_event_cells(*event) for event in _EVENTS[staff].rows({"user": user.pk}, limit=LATEST_EVENTS)]
    context = {"health": health, "healthy": healthy, "counts": linked, "warnings": warnings, "setup": _setup(),
               "events": events}
    return render(request, "autobot/dashboard.html", context)


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def tokens_page(request):
    """Create, list and revoke your API tokens; everything on it talks to /api/tokens."""
    return render(request, "autobot/tokens.html")


def favicon(request):
    return HttpResponseRedirect(settings.STATIC_URL + "favicon.svg")


def coming_soon(app: str):
    title, description = COMING[app]

    @login_required
    def view(request):
        return render(request, "autobot/coming_soon.html", {"title": title, "description": description, "app": app})

    return view


def _metrics_allowed(request) -> bool:
    if settings.METRICS_PUBLIC or (request.user.is_authenticated and request.user.is_staff):
        return True
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        user = token_authenticate_sync(authorization[7:].strip())
        return bool(user and user.is_staff)
    return False


def metrics_view(request):
    if not _metrics_allowed(request):
        return JsonResponse({"detail": "metrics need a staff session or a staff API token", "code": "forbidden"},
                            status=403)
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


def admin_login(request):
    """The admin's login goes through the one audited login page. A signed-in user who is not
    staff is told so, instead of bouncing between the two login pages forever."""
    if request.user.is_authenticated and not request.user.is_staff:
        return render(request, "autobot/forbidden.html",
                      {"title": "Admin", "detail": "The admin is for staff accounts; yours is not one."}, status=403)
    query = request.META.get("QUERY_STRING", "")
    return HttpResponseRedirect("/accounts/login/" + (f"?{query}" if query else ""))


def api_not_found(request, *args, **kwargs):
    return JsonResponse({"detail": f"no API endpoint at {request.path}", "code": "not_found"}, status=404)


api_not_found.matches_any_path = True  # its paths are not remembered (autobot/handler.py, `resolved`)
