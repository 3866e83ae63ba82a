import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render

from autobot import audit, metrics, throttle
from autobot.auth import token_authenticate_sync
from autobot.errors import AppError, Unavailable
from autobot.health import health_report
from autobot.http import client_ip
from autobot.models import ApiToken, AuditEvent
from autobot.pages import page

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


async def _capability_counts(user) -> dict:
    """What the user has in each capability, asked of each app's services (never its models)."""
    from chat import services as chat
    from knowledge import services as knowledge
    from terminal import services as terminal

    counts = {}
    _, counts["chat sessions"] = await chat.session_list(user=user, limit=1)
    knowledge_stats = await knowledge.stats(user=user)
    counts["knowledge entries"] = knowledge_stats["entries"]
    try:
        counts["live terminal sessions"] = await (await terminal.session_list(user=user, status="live")).acount()
    except AppError:  # no terminal permission: nothing to count
        pass
    return counts


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


@page  # signed-in only; the user read once, in one lane job (autobot/pages.py)
async def dashboard(request):
    user = await request.auser()
    events = AuditEvent.objects.all()
    if not user.is_staff:
        events = events.filter(actor_id=user.pk)
    status, health = await health_report()
    counts = await _capability_counts(user)
    counts["api tokens"] = await ApiToken.objects.filter(user=user, revoked_at__isnull=True).acount()
    counts["audit events"] = await events.acount()
    warnings = []
    if user.is_staff:
        from terminal import services as terminal

        counts["users"] = await User.objects.acount()
        warnings = await terminal.operator_warnings()
    linked = [{"name": name, "value": value, "url": _count_link(name, user)} for name, value in counts.items()]
    context = {"health": health, "healthy": status == 200, "counts": linked, "warnings": warnings,
               "setup": await asyncio.to_thread(_setup),
               "events": [event async for event in events.order_by("-id")[:15]]}
    # Rendered in a thread: the base template's context (user, messages) may read the session.
    return await sync_to_async(render)(request, "autobot/dashboard.html", context)


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
