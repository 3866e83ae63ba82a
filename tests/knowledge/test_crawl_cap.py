"""The per-user crawl cap holds when starts arrive together: counted and created under one lock.

The starts run as separate tasks on the lanes, each sync call on its own thread and database
connection, as concurrent requests (or requests on several workers) do."""

import asyncio

import pytest

from autobot.errors import RateLimited
from autobot.lanes import spawn
from knowledge import services
from knowledge.models import CrawlJob

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def test_six_concurrent_starts_with_a_cap_of_three_start_exactly_three(owner, site, settings):
    settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE = True  # the test site is on 127.0.0.1
    settings.KNOWLEDGE_CRAWL_DELAY = 0
    settings.KNOWLEDGE_CRAWL_TIMEOUT = 30  # /slow holds each crawl open until the test releases it
    settings.KNOWLEDGE_CRAWL_MAX_ACTIVE = 3

    async def start():
        try:
            return await services.crawl_start(user=owner, url=f"{site.base}/slow", max_pages=1, max_depth=0)
        except RateLimited as exc:
            return exc

    results = await asyncio.gather(*(spawn(start()) for _ in range(6)))
    started = [r for r in results if isinstance(r, CrawlJob)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert (len(started), len(refused)) == (3, 3)
    assert all("you already have 3 crawls running" in r.detail for r in refused)
    assert await CrawlJob.objects.filter(owner=owner).acount() == 3
    for job in started:
        await services.crawl_cancel(user=owner, crawl_id=job.pk)
    site.release_slow.set()
    for job in started:
        await services.crawl_wait(job.pk)
