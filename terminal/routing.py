from django.urls import re_path

from terminal.consumers import TerminalConsumer

websocket_urlpatterns = [
    re_path(r"^ws/terminal/(?P<session_id>[0-9a-fA-F-]{1,64})/$", TerminalConsumer.as_asgi()),
]
