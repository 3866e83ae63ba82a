from django.urls import re_path

from knowledge.consumers import CrawlProgressConsumer

websocket_urlpatterns = [
    re_path(r"^ws/knowledge/crawls/(?P<crawl_id>[0-9]+)/$", CrawlProgressConsumer.as_asgi()),
]
