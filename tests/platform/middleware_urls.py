"""Async views for tests/platform/test_middleware.py, with the site's own URLs behind them."""

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.urls import include, path


async def remember(request):
    await request.session.aset("colour", request.GET["colour"])
    return HttpResponse("remembered")


async def recall(request):
    return JsonResponse({"colour": await request.session.aget("colour")})


async def notify(request):
    messages.info(request, request.GET["text"])
    return HttpResponse("noted")


async def inbox(request):
    stored = await sync_to_async(list)(messages.get_messages(request))  # may read the session
    return JsonResponse({"messages": [str(message) for message in stored]})


async def api_probe(request):
    return JsonResponse({"message_storage": hasattr(request, "_messages")})


async def form(request):
    return HttpResponse(f"posted {request.method}")


urlpatterns = [
    path("test-mw/remember", remember),
    path("test-mw/recall", recall),
    path("test-mw/notify", notify),
    path("test-mw/inbox", inbox),
    path("test-mw/form", form),
    path("api/test-mw/probe", api_probe),
    path("", include("autobot.urls")),
]
