"""Interop fixtures: a real AutoBot server for the MCP and A2A clients, one per test module."""

import pytest

from tests.conftest import app_server

HIGH_COMMAND = "python3 -c 'print(1)'"  # inline interpreter code: the rules rate it HIGH


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_blocker):
    """A started server (tests/conftest.py's `app_server`) with its files and recordings in a
    temporary folder of its own."""
    tmp = tmp_path_factory.mktemp("interop")
    env = {"AUTOBOT_FILES_ROOT": str(tmp / "files"), "AUTOBOT_TERMINAL_RECORDINGS_DIR": str(tmp / "recordings")}
    server = app_server(tmp / "var", env=env).start()
    yield server
    server.kill()
