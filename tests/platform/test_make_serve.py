"""`make serve`: refuses to start without PostgreSQL and Redis, and runs WORKERS uvicorn workers on them."""

import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

from autobot.testing import ROOT, ServerProcess, database_url, free_port
from tests.conftest import TEST_REDIS_URL


def make_serve(env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(["make", "--no-print-directory", "serve"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "named"), [
    ({}, "set DATABASE_URL=postgres://"),
    ({"DATABASE_URL": "sqlite:////tmp/autobot.sqlite3", "REDIS_URL": "redis://127.0.0.1:6379/0"},
     "set DATABASE_URL=postgres://"),
    ({"DATABASE_URL": "postgres://autobot@127.0.0.1/autobot"}, "set REDIS_URL=redis://"),
])
def test_it_refuses_to_start_without_postgres_and_redis(env, named):
    result = make_serve(env)
    assert result.returncode != 0
    assert named in result.stderr and "docs/deployment.md" in result.stderr


def workers_under(pid: int) -> int:
    """Processes below `pid` that are uvicorn's workers (multiprocessing children)."""
    count, stack = 0, [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            for child in (task / "children").read_text().split():
                stack.append(int(child))
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                count += b"multiprocessing.spawn" in cmdline
    return count


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
async def test_it_serves_with_two_workers_on_postgres_and_redis(settings, tmp_path):
    port = free_port()
    env = {"DATABASE_URL": database_url(settings.DATABASES["default"]), "REDIS_URL": TEST_REDIS_URL,
           "AUTOBOT_SECRET_KEY": settings.SECRET_KEY, "PORT": str(port), "WORKERS": "2"}
    # -o: the venv is there already; don't let a newer requirements.txt send make to pip.
    server = ServerProcess(env=env, var_dir=tmp_path, name="make-serve", port=port, ready_seconds=60,
                           command=["make", "--no-print-directory", "-o", ".venv/.runtime", "serve"])
    server.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{server.url}/api/health") as response:
            health = await response.json()
        assert response.status == 200, health
        assert {"database", "channel_layer", "redis"} <= set(health["checks"])
        assert workers_under(server.process.pid) == 2
        assert list((tmp_path / "metrics").glob("*.db"))  # metrics are shared between the workers
    finally:
        server.stop()
