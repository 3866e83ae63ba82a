"""autobot/testing.py: the helper that runs the real server for tests and benchmarks."""

import json
import urllib.request

import pytest

from autobot.testing import ServerFailed
from tests.conftest import app_server

pytestmark = pytest.mark.django_db(transaction=True)


def _health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/health", timeout=5) as response:
        return json.load(response)


def test_a_server_starts_answers_dies_on_kill_and_restarts_on_its_port(tmp_path):
    server = app_server(tmp_path, name="worker")
    try:
        server.start()
        assert _health(server.url)["status"] == "ok"
        port, first_pid = server.port, server.pid
        assert server.kill() == -9  # SIGKILL, as a crash
        with pytest.raises(OSError):
            _health(server.url)
        server.start()
        assert (server.port, _health(server.url)["status"]) == (port, "ok")
        assert server.pid != first_pid
    finally:
        assert server.stop() is not None
    assert not server.running()


def test_a_server_that_cannot_start_fails_with_the_reason_from_its_log(tmp_path):
    server = app_server(tmp_path, env={"AUTOBOT_SYNC_THREADS": "many"})
    with pytest.raises(ServerFailed, match="AUTOBOT_SYNC_THREADS") as failed:
        server.start()
    assert "exited with code" in str(failed.value)
    assert not server.running()
