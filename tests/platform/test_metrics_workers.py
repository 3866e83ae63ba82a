"""/metrics tells the truth across workers: with PROMETHEUS_MULTIPROC_DIR every worker on the host
reports the sum of all of them, and a killed worker's open sockets stop counting."""

import uuid

import aiohttp
import pytest
import websockets
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from autobot.testing import ServerProcess, database_url
from chat.models import ChatSession
from tests.conftest import SERVER_READY_SECONDS, make_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


async def scrape(server: ServerProcess) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def not_found_count(samples: dict) -> float:
    return sum(v for (name, labels), v in samples.items() if name == "autobot_http_requests_total"
               and dict(labels).get("route") == "unmatched" and dict(labels).get("status") == "404")


def chat_sockets(samples: dict) -> float:
    return samples.get(("autobot_websocket_connections", (("route", "chat"),)), 0)


async def open_chat(server: ServerProcess, token: str, session_id) -> websockets.ClientConnection:
    return await websockets.connect(f"ws://{server.address}/ws/chat/{session_id}/",
                                    additional_headers={"Authorization": f"Bearer {token}"})


async def test_every_worker_reports_the_sum_of_all_workers(owner, settings, tmp_path):
    env = {"DATABASE_URL": database_url(settings.DATABASES["default"]),
           "DJANGO_SETTINGS_MODULE": "tests.server_settings", "AUTOBOT_SECRET_KEY": settings.SECRET_KEY,
           "AUTOBOT_METRICS_PUBLIC": "true", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    a, b = (ServerProcess(env=env, var_dir=tmp_path, name=name, ready_seconds=SERVER_READY_SECONDS).start()
            for name in ("a", "b"))
    sockets = []
    try:
        async with aiohttp.ClientSession() as http:
            for server, n in ((a, 3), (b, 2)):
                for _ in range(n):
                    async with http.get(f"{server.url}/no-such-page-{uuid.uuid4().hex}") as response:
                        assert response.status == 404
        token = await sync_to_async(make_token)(owner)
        chat = await ChatSession.objects.acreate(owner=owner)
        sockets = [await open_chat(a, token, chat.id), await open_chat(b, token, chat.id)]
        for server in (a, b):
            samples = await scrape(server)
            assert not_found_count(samples) == 5
            assert chat_sockets(samples) == 2

        b.kill()  # its socket is gone with it; the next worker to start stops counting it
        c = ServerProcess(env=env, var_dir=tmp_path, name="c", ready_seconds=SERVER_READY_SECONDS).start()
        samples = await scrape(c)
        assert chat_sockets(samples) == 1
        assert not_found_count(samples) == 5  # what the killed worker served still counts
        c.stop()
    finally:
        for ws in sockets:
            await ws.close()
        a.stop()
        b.stop()
