import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from autobot.errors import AppError
from chat.markdown import render as render_markdown
from knowledge import services


@login_required
async def index(request):
    # Async, so the page renders on a lane: a sync view gets a new thread per request, and 100
    # concurrent page loads made 100 threads (docs/performance.md).
    return await sync_to_async(render)(request, "knowledge/index.html", {
        "max_upload_bytes": settings.KNOWLEDGE_MAX_UPLOAD_BYTES,
        "max_pages": settings.KNOWLEDGE_CRAWL_MAX_PAGES,
    })


@login_required
async def entry_html(request, entry_id: int):
    """An entry's Markdown as sanitized HTML (the same renderer and allow-list as chat replies),
    for the page's detail view. Who may read it is the service's decision, as in the API."""
    try:
        entry = await services.entry_get(user=await request.auser(), entry_id=entry_id)
    except AppError as exc:
        return JsonResponse(exc.to_dict(), status=exc.status)
    html = await asyncio.to_thread(render_markdown, entry.content)  # large entries: off the loop
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response
