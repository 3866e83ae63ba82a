"""Tokens never appear in logs, even when a client puts one in a URL (which is refused)."""

import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from autobot.logs import redact
from tests.e2e.conftest import run_server

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "abt_QueryStringSecret0123456789"


def test_redact_hides_tokens_and_credential_parameters():
    line = f'127.0.0.1:5 - "GET /api/me?x=1&token={SECRET}&access_token=plain HTTP/1.1" 401'
    assert redact(line) == '127.0.0.1:5 - "GET /api/me?x=1&token=[redacted]&access_token=[redacted] HTTP/1.1" 401'
    assert SECRET not in redact(f"Bearer {SECRET}")


def test_a_token_in_the_query_string_is_refused_and_not_logged(tmp_path):
    with run_server(tmp_path, log_level="info") as url:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/api/me?token={SECRET}", timeout=10)
        assert refused.value.code == 401
        ws_url = url.replace("http://", "ws://") + f"/ws/agents/?agent_id=probe&token={SECRET}"
        with connect(ws_url, open_timeout=10) as socket, pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
        assert closed.value.rcvd.code == 4401
    log = (tmp_path / "server.log").read_text()
    assert "GET /api/me?token=[redacted]" in log  # the access log ran, and was redacted
    assert "QueryStringSecret" not in log
