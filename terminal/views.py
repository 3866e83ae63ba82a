from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from autobot.csp import WASM_POLICY
from autobot.errors import AppError
from autobot.pages import has_perm, page
from terminal import services
from terminal.policy import describe_levels, max_level_for


def _can_use(user) -> bool:
    """services.require_terminal's rule (staff, or the permission), the permission read in one
    query (autobot.pages.has_perm)."""
    return user.is_staff or has_perm(user, "terminal.use_terminal")


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    """The terminal page; everything on it talks to /api/terminal/ and /ws/terminal/."""
    context = {
        "can_use": _can_use(request.user),
        "levels": describe_levels(),
        "max_level": max_level_for(request.user.is_staff).value,
        "reconnect_minutes": max(1, round(settings.TERMINAL_RECONNECT_SECONDS / 60)),
    }
    return render(request, "terminal/index.html", context, status=200 if context["can_use"] else 403)


@login_required
def replay(request, session_id):
    """Replay a recording with asciinema-player (owner or staff)."""
    try:
        session = async_to_sync(services.session_get)(user=request.user, session_id=session_id)
    except AppError as exc:
        return render(request, "terminal/replay.html", {"error": exc.detail}, status=exc.status)
    response = render(request, "terminal/replay.html", {"session": session})
    response["Content-Security-Policy"] = WASM_POLICY  # the player is WebAssembly (autobot/csp.py)
    return response
