import os
import subprocess
import sys

import pytest
from django.test import AsyncClient

from autobot.redisconf import channel_layer_config

pytestmark = pytest.mark.django_db(transaction=True)


async def test_health_ok_with_real_round_trip():
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["channel_layer"]["status"] == "ok"
    assert body["version"]


async def test_with_the_in_memory_layer_the_layer_watch_is_not_running():
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 200
    assert response.json()["layer_watch"] == {"state": "not_running", "failures": 0, "epoch": 0}


def test_the_openapi_document_describes_the_layer_watch():
    from autobot.api import api

    document = api.get_openapi_schema()
    health = document["paths"]["/api/health"]["get"]["responses"]
    ref = health[200]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert ref == health[503]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schemas = document["components"]["schemas"]
    assert "layer_watch" in schemas[ref]["required"]
    watch = schemas["LayerWatchOut"]["properties"]
    assert set(watch["state"]["enum"]) == {"ok", "failing", "starting", "not_running"}
    assert {"failures", "seconds_since_success", "epoch"} <= set(watch)


async def test_health_503_names_the_channel_layer_when_redis_is_down(settings):
    # Nothing listens on port 1: the same as Redis being stopped while REDIS_URL is set.
    from channels.layers import channel_layers

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(settings.REDIS_URL)}
    settings.HEALTH_TIMEOUT_SECONDS = 1.0
    channel_layers.backends.clear()
    try:
        response = await AsyncClient().get("/api/health")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["channel_layer"]["status"] == "fail"
    assert body["checks"]["redis"]["status"] == "fail"
    assert body["checks"]["database"]["status"] == "ok"
    assert "channel_layer" in body["detail"]


async def test_a_check_that_hangs_is_a_timeout_and_the_others_still_answer(settings):
    """A Redis that accepts connections and never answers (a loopback server that reads and says
    nothing): its checks fail with "timeout" after HEALTH_TIMEOUT_SECONDS, the database's is ok."""
    import asyncio

    from channels.layers import channel_layers

    held = []

    async def silent(reader, writer):
        held.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(settings.REDIS_URL)}
    settings.HEALTH_TIMEOUT_SECONDS = 0.3
    channel_layers.backends.clear()
    try:
        response = await AsyncClient().get("/api/health")
    finally:
        channel_layers.backends.clear()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["channel_layer"] == {"status": "fail", "error": "timeout"}
    assert checks["redis"]["status"] == "fail" and checks["redis"]["error"] == "timeout"
    assert checks["database"]["status"] == "ok"


@pytest.mark.redis
async def test_health_ok_on_real_redis(settings):
    from channels.layers import channel_layers

    settings.REDIS_URL = os.environ["AUTOBOT_TEST_REDIS_URL"]
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(settings.REDIS_URL)}
    channel_layers.backends.clear()
    try:
        response = await AsyncClient().get("/api/health")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["channel_layer"]["status"] == "ok"
    assert response.json()["checks"]["redis"]["status"] == "ok"


@pytest.mark.postgres
async def test_health_ok_on_postgres():
    from django.db import connection

    assert connection.vendor == "postgresql"
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"


@pytest.mark.postgres
async def test_health_is_ok_again_at_once_after_the_database_drops_its_connection():
    """The health check keeps its connection; when PostgreSQL ends it (a restart does), the next
    check must say whether the database answers now, not fail on the dead socket."""
    import asyncio

    from django.db import connection

    from autobot import lanes

    assert (await AsyncClient().get("/api/health")).status_code == 200
    pid = await asyncio.wrap_future(lanes.dedicated("health").submit(lambda: connection.connection.info.backend_pid))

    def terminate():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        connection.close()

    await asyncio.to_thread(terminate)
    response = await AsyncClient().get("/api/health")
    assert response.status_code == 200, response.json()


async def test_metrics_need_staff(api_client, owner, staff):
    assert (await AsyncClient().get("/metrics")).status_code == 403
    assert (await api_client(owner).get("/metrics")).status_code == 403
    await AsyncClient().get("/api/health")
    response = await api_client(staff).get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'autobot_http_requests_total{method="GET",route="api/health",status="200"}' in text
    assert 'autobot_http_request_duration_seconds_bucket{le="0.005",method="GET",route="api/health"}' in text
    assert "# TYPE autobot_websocket_connections gauge" in text


async def test_made_up_methods_do_not_create_metric_series(api_client, staff):
    for n in range(3):
        await AsyncClient().generic(f"FOO{n}", "/api/health")
    text = (await api_client(staff).get("/metrics")).content.decode()
    assert "FOO" not in text
    assert 'method="other"' in text


@pytest.mark.parametrize("name,value,message", [
    ("AUTOBOT_DEBUG", "maybe", "AUTOBOT_DEBUG='maybe' is not a boolean"),
    ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL"),
    ("AUTOBOT_API_TOKEN_DAYS", "ten", "AUTOBOT_API_TOKEN_DAYS='ten' is not an integer"),
])
def test_settings_fail_loudly_on_malformed_values(name, value, message, tmp_path):
    env = {**os.environ, name: value, "AUTOBOT_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "autobot.settings"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr


def test_secret_key_is_generated_once_and_kept(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AUTOBOT_SECRET_KEY"}
    env.update(AUTOBOT_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="autobot.settings")
    code = "from autobot import settings; print(settings.SECRET_KEY)"  # the settings module alone: no app loading
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first.stdout.strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
