from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
async def index(request):
    # Async, so the page renders on a lane: a sync view gets a new thread per request, and 100
    # concurrent page loads made 100 threads (docs/performance.md).
    return await sync_to_async(render)(request, "chat/index.html", {"max_chars": settings.CHAT_MAX_MESSAGE_CHARS})
