"""Views for tests/platform/test_pages.py, with the site's own URLs behind them."""

import threading

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpResponse, JsonResponse
from django.urls import include, path

from autobot.pages import page

seen: list[dict] = []  # what the last runs of `probe` saw


@page
def probe(request, number):
    """Where the page ran and which user it saw, by `request.user` and by `auser()`."""
    seen.append({"thread": threading.current_thread().name, "user": request.user.get_username(),
                 "same_user": request.user is request._acached_user,
                 "lazy": type(request.user).__name__ == "SimpleLazyObject"})
    return JsonResponse({"ok": True})


@page
def teapot(request):
    response = HttpResponse("short and stout", status=418)
    response["X-Kettle"] = "on"
    return response


@page
def notify(request):
    messages.info(request, request.GET["text"])
    return HttpResponse("noted")


@page(async_calls=True)
def nested(request):
    """A body that calls async code (the dashboard's case): the async ORM's query, run from the
    event loop, comes back to this job's thread."""
    outer = threading.current_thread().name
    count = async_to_sync(get_user_model().objects.filter(pk=request.user.pk).acount)()
    return JsonResponse({"count": count, "thread": outer})


urlpatterns = [
    path("test-pages/nested", nested),
    path("test-pages/probe/<int:number>", probe),
    path("test-pages/teapot", teapot),
    path("test-pages/notify", notify),
    path("", include("autobot.urls")),
]
