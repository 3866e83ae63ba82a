"""A second URL configuration, for tests/platform/test_handler.py."""

from django.http import HttpResponse
from django.urls import path

urlpatterns = [path("chat/", lambda request: HttpResponse("other"), name="other-chat")]
