"""Crawl jobs end to end: the REST API starts a server-side task that crawls the loopback test
site (tests/knowledge/conftest.py) into entries; progress arrives over the WebSocket."""

import pytest

from autobot.models import AuditEvent
from knowledge import services
from knowledge.models import CrawlJob, KnowledgeEntry

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/knowledge/crawls"


@pytest.fixture(autouse=True)
def crawl_settings(settings):
    settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE = True  # the test site is on 127.0.0.1
    settings.KNOWLEDGE_CRAWL_DELAY = 0
    settings.KNOWLEDGE_CRAWL_TIMEOUT = 0.5
    settings.KNOWLEDGE_CRAWL_MAX_BYTES = 200_000
    return settings


async def start(client, **body):
    response = await client.post(URL, body, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()


async def finished(client, crawl_id):
    await services.crawl_wait(crawl_id)
    return (await client.get(f"{URL}/{crawl_id}")).json()


async def test_a_crawl_turns_the_site_into_searchable_entries(api_client, owner, site):
    client = api_client(owner)
    job = await start(client, url=site.base + "/", max_pages=30, max_depth=3, category="docs", tags=["site"])
    assert job["status"] in ("queued", "running")
    done = await finished(client, job["id"])
    assert done["status"] == "done", done
    assert done["pages_ingested"] == 8 and done["pages_failed"] == 4
    assert {e["url"].removeprefix(site.base) for e in done["errors"]} >= {"/missing", "/slow", "/huge", "/file.bin"}
    assert await KnowledgeEntry.objects.filter(source_type="web", category="docs").acount() == 8
    hits = (await client.get("/api/knowledge/search", {"q": "bravo configuring"})).json()["items"]
    assert hits[0]["source"] == site.base + "/b" and hits[0]["source_type"] == "web"
    actions = [a async for a in AuditEvent.objects.values_list("action", flat=True)]
    assert actions.count("knowledge.crawl_started") == 1 and actions.count("knowledge.crawl_finished") == 1
    assert (await client.get(URL)).json()["count"] == 1


async def test_recrawling_updates_changed_pages_and_leaves_the_rest(api_client, owner, site):
    client = api_client(owner)
    first = await finished(client, (await start(client, url=site.base + "/b", max_depth=1))["id"])
    assert first["pages_ingested"] == 3
    ids = {e.source: e.pk async for e in KnowledgeEntry.objects.all()}
    site.pages["/a"] = site.pages["/a"].replace("Alpha content", "Alpha content, revised")
    second = await finished(client, (await start(client, url=site.base + "/b", max_depth=1))["id"])
    assert (second["pages_ingested"], second["pages_unchanged"]) == (1, 2)
    assert {e.source: e.pk async for e in KnowledgeEntry.objects.all()} == ids
    revised = await KnowledgeEntry.objects.aget(source=site.base + "/a")
    assert "revised" in revised.content


async def test_a_running_crawl_can_be_cancelled(api_client, owner, site, settings):
    settings.KNOWLEDGE_CRAWL_TIMEOUT = 60
    client = api_client(owner)
    job = await start(client, url=site.base + "/slow")
    await site.slow_entered.wait()
    response = await client.post(f"{URL}/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert (await finished(client, job["id"]))["status"] == "cancelled"
    assert "knowledge.crawl_cancelled" in [a async for a in AuditEvent.objects.values_list("action", flat=True)]


async def test_private_addresses_are_refused_unless_allowed(api_client, owner, site, crawl_settings):
    crawl_settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE = False
    client = api_client(owner)
    for url in (site.base + "/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"):
        response = await client.post(URL, {"url": url}, content_type="application/json")
        assert response.status_code == 422 and response.json()["code"] == "url_not_allowed", url
    assert site.hits == []
    assert await CrawlJob.objects.acount() == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # The schema itself refuses these (pattern ^https?://, max_pages ≤ the setting).
        ({"url": "file:///etc/passwd"}, "validation_error"),
        ({"url": "javascript:alert(1)"}, "validation_error"),
        ({"url": "http://example.test/", "max_pages": 100_000}, "validation_error"),
        ({"url": "http://example.test/", "include": ["("]}, "invalid_input"),
    ],
)
async def test_bad_crawl_requests_are_422(api_client, owner, body, code):
    response = await api_client(owner).post(URL, body, content_type="application/json")
    assert response.status_code == 422 and response.json()["code"] == code


async def test_other_users_cannot_see_or_cancel_a_crawl(api_client, owner, stranger, staff, site):
    job = await start(api_client(owner), url=site.base + "/deep/2")
    await services.crawl_wait(job["id"])
    other = api_client(stranger)
    assert (await other.get(f"{URL}/{job['id']}")).status_code == 404
    assert (await other.post(f"{URL}/{job['id']}/cancel")).status_code == 404
    assert (await other.get(URL)).json()["count"] == 0
    assert (await api_client(staff).get(f"{URL}/{job['id']}")).status_code == 200


async def test_the_websocket_streams_progress_and_can_cancel(api_client, owner, site, settings, ws_connect):
    settings.KNOWLEDGE_CRAWL_TIMEOUT = 60
    job = await start(api_client(owner), url=site.base + "/slow")
    await site.slow_entered.wait()
    comm = await ws_connect(f"/ws/knowledge/crawls/{job['id']}/", user=owner)
    first = await comm.receive_json_from(timeout=5)
    assert first["type"] == "progress" and first["crawl"]["status"] == "running"
    await comm.send_json_to({"type": "cancel"})
    statuses = []
    while "cancelled" not in statuses:
        message = await comm.receive_json_from(timeout=5)
        statuses.append(message["crawl"]["status"])
    await services.crawl_wait(job["id"])
    await comm.disconnect()


async def test_progress_names_the_crawls_owner(api_client, owner, site, ws_connect):
    job = await start(api_client(owner), url=site.base + "/deep/1")
    await services.crawl_wait(job["id"])
    comm = await ws_connect(f"/ws/knowledge/crawls/{job['id']}/", user=owner)
    frame = await comm.receive_json_from(timeout=5)
    assert frame["crawl"]["owner"] == "owner"
    await comm.disconnect()


async def test_the_websocket_reports_a_finished_crawl(api_client, owner, site, ws_connect):
    job = await start(api_client(owner), url=site.base + "/deep/1")
    await services.crawl_wait(job["id"])
    comm = await ws_connect(f"/ws/knowledge/crawls/{job['id']}/", user=owner)
    message = await comm.receive_json_from(timeout=5)
    assert message["crawl"]["status"] == "done" and message["crawl"]["pages_ingested"] == 2
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=5) == {"type": "pong"}
    assert await comm.receive_nothing()
    await comm.disconnect()


async def test_the_websocket_refuses_other_users(api_client, owner, stranger, site, ws_connect):
    job = await start(api_client(owner), url=site.base + "/deep/2")
    await services.crawl_wait(job["id"])
    comm = await ws_connect(f"/ws/knowledge/crawls/{job['id']}/", user=stranger)
    message = await comm.receive_json_from(timeout=5)
    assert message == {"type": "error", "detail": f"crawl {job['id']} not found", "code": "crawl_not_found"}
    assert (await comm.receive_output(timeout=5))["code"] == 4404
    await comm.disconnect()


COMPONENTS = ["nginx", "postgresql", "redis", "rabbitmq", "elasticsearch", "kafka", "grafana", "prometheus",
              "haproxy", "memcached", "mongodb", "mysql", "cassandra", "zookeeper", "jenkins", "gitlab", "vault",
              "consul", "etcd", "minio"]
TASKS = {
    "install": "Installing {c}: download the package, verify its signature and install it with the package manager.",
    "configure": "Configuring {c}: edit the configuration file, set the listen address and reload the service.",
    "backup": "Backing up {c}: take a nightly snapshot, copy the backup offsite and test restoring it.",
    "upgrade": "Upgrading {c}: read the release notes, upgrade one node at a time and roll back on errors.",
    "monitor": "Monitoring {c}: export metrics, build dashboards and alert on latency and error rates.",
    "secure": "Securing {c}: enable TLS certificates, rotate passwords and restrict network access.",
    "troubleshoot": "Troubleshooting {c}: read the logs, check disk space and trace slow requests.",
    "scale": "Scaling {c}: add replicas, shard the data and balance the load across nodes.",
    "migrate": "Migrating {c}: export the data, import it on the new host and switch clients over.",
    "tune": "Tuning {c} performance: size the caches, raise connection limits and profile hot paths.",
}


def docs_site_app():
    """A documentation site of 201 pages: an index linking to 200 how-to pages."""
    from aiohttp import web

    boilerplate = "<nav>Docs home · Search · About</nav><footer>Copyright the docs team. All rights reserved.</footer>"
    pages = {}
    for c in COMPONENTS:
        for task, sentence in TASKS.items():
            text = sentence.format(c=c)
            siblings = " ".join(f'<a href="/{c}/{t}.html">{t}</a>' for t in TASKS)
            pages[f"/{c}/{task}.html"] = (
                f"<html><head><title>{text.split(':')[0]}</title></head><body>{boilerplate}<main>"
                f"<h1>{text.split(':')[0]}</h1><p>{text}</p><h2>Related</h2><p>See the other {c} guides.</p>"
                f"{siblings}</main></body></html>"
            )
    links = " ".join(f'<a href="{path}">{path}</a>' for path in pages)
    pages["/"] = f"<html><head><title>Docs</title></head><body><main><h1>Docs</h1>{links}</main></body></html>"

    async def handle(request):
        if request.path in pages:
            return web.Response(text=pages[request.path], content_type="text/html")
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


@pytest.fixture
async def docs_site():
    from aiohttp.test_utils import TestServer

    server = TestServer(docs_site_app(), host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


QUESTIONS = [
    ("how do I back up my postgresql database", "/postgresql/backup.html"),
    ("rotate passwords and enable TLS for vault", "/vault/secure.html"),
    ("kafka upgrade release notes", "/kafka/upgrade.html"),
    ("why are redis requests slow", "/redis/troubleshoot.html"),
]


async def test_a_crawled_documentation_site_answers_natural_questions(api_client, owner, docs_site):
    client = api_client(owner)
    # One crawl of the 201 pages for all the questions: crawling it again per question only costs time.
    job = await finished(client, (await start(client, url=docs_site + "/", max_pages=300, max_depth=2))["id"])
    assert job["status"] == "done" and job["pages_ingested"] == 201, job
    assert await KnowledgeEntry.objects.filter(source_type="web").acount() == 201
    missed = {}
    for question, expected in QUESTIONS:
        hits = (await client.get("/api/knowledge/search", {"q": question, "limit": 5})).json()["items"]
        top = [hit["source"].removeprefix(docs_site) for hit in hits[:3]]
        if expected not in top:
            missed[question] = (expected, top)
    assert not missed, missed  # every question, not just the first miss


async def test_a_crawl_left_running_by_a_stopped_server_is_marked_failed(api_client, owner, settings):
    # Rows a crashed worker left "running": a gone process on this host, and this very process
    # without a task for the job. Both would otherwise count against the user's limit forever.
    import asyncio

    from autobot.workers import WORKER_ID

    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    host = WORKER_ID.rpartition(":")[0]
    settings.KNOWLEDGE_CRAWL_MAX_ACTIVE = 2
    for worker in (f"{host}:{dead.pid}", WORKER_ID):
        await CrawlJob.objects.acreate(owner=owner, url="http://127.0.0.1:9/", status=CrawlJob.Status.RUNNING,
                                       worker=worker)
    client = api_client(owner)
    listing = (await client.get(URL)).json()
    assert {item["status"] for item in listing["items"]} == {"failed"}
    assert all("interrupted" in item["detail"] for item in listing["items"])


async def test_a_crawl_on_another_host_is_left_alone(api_client, owner):
    job = await CrawlJob.objects.acreate(owner=owner, url="http://127.0.0.1:9/", status=CrawlJob.Status.RUNNING,
                                         worker="some-other-host:1234")
    response = await api_client(owner).get(f"{URL}/{job.pk}")
    assert response.json()["status"] == "running"
