import asyncio

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import get_language

from autobot.errors import AppError
from autobot.memo import Memo
from autobot.pages import number_text, page
from chat.markdown import render as render_markdown
from knowledge import services


@page  # signed-in only; session, user and rendering in one lane job (autobot/pages.py)
def index(request):
    return render(request, "knowledge/index.html", {  # the numbers' texts made once (`number_text`)
        "max_upload_bytes": number_text(settings.KNOWLEDGE_MAX_UPLOAD_BYTES),
        "max_upload_size": size_text(settings.KNOWLEDGE_MAX_UPLOAD_BYTES),
        "max_pages": number_text(settings.KNOWLEDGE_CRAWL_MAX_PAGES),
    })


_sizes = Memo(64, settings=True)


def size_text(count: int) -> str:
    """`{{ count|filesizeformat }}` ("20.0 MB"), kept by the number and the active language: the
    filter's number formatting and translation lookups cost ~60,000 instructions, ~2 % of the page,
    for the same text every time. A setting changed (number format, language...) forgets it."""
    key = (count, get_language())
    text = _sizes.get(key)
    if text is None:
        text = filesizeformat(count)
        _sizes.put(key, text)
    return text


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
