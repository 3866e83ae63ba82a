from django.urls import re_path

from agents.consumers import AgentConsumer, AgentFeedConsumer

websocket_urlpatterns = [
    re_path(r"^ws/agents/$", AgentConsumer.as_asgi()),
    re_path(r"^ws/agents/feed/$", AgentFeedConsumer.as_asgi()),
]
