"""Graceful shutdown of a real worker: SIGTERM ends its terminals audited, stores its answers as
they stand, closes its sockets with a code that says "reconnect", and loses no audit event."""

import asyncio
import json
import signal
import subprocess
import sys

import pytest
import websockets
from asgiref.sync import sync_to_async

from autobot.models import AuditEvent
from autobot.testing import ROOT
from chat.models import ChatMessage
from terminal.models import TerminalSession
from tests.chat.fake_llm import FakeLLMThread
from tests.conftest import app_server, make_token
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def server(tmp_path):
    with FakeLLMThread(tokens=[f"t{i} " for i in range(200)], delay=0.05) as llm:
        env = {"AUTOBOT_FILES_ROOT": str(tmp_path / "files"),
               "AUTOBOT_TERMINAL_RECORDINGS_DIR": str(tmp_path / "recordings"), "AUTOBOT_LLM_PROVIDER": "ollama",
               "AUTOBOT_LLM_BASE_URL": llm.url, "AUTOBOT_LLM_MODEL": "fake-small"}
        server = app_server(tmp_path / "var", env=env).start()
        yield server
        server.kill()


async def test_sigterm_ends_terminals_and_answers_cleanly(server, owner):
    proc, address, env = server.process, server.address, server.env
    await sync_to_async(_grant)(owner)
    token = await sync_to_async(make_token)(owner)
    auth = {"Authorization": f"Bearer {token}"}
    import aiohttp

    async with aiohttp.ClientSession(f"http://{address}", headers=auth) as http:
        async with http.post("/api/terminal/sessions", json={}) as response:
            session = await response.json()
        async with http.post("/api/chat/sessions", json={}) as response:
            chat = await response.json()
    terminal_ws = await websockets.connect(f"ws://{address}/ws/terminal/{session['id']}/", additional_headers=auth)
    chat_ws = await websockets.connect(f"ws://{address}/ws/chat/{chat['id']}/", additional_headers=auth)
    await chat_ws.send(json.dumps({"type": "message", "content": "go on", "use_knowledge": False}))
    while json.loads(await asyncio.wait_for(chat_ws.recv(), 10))["type"] != "token":
        pass

    proc.send_signal(signal.SIGTERM)
    codes = []
    for ws in (terminal_ws, chat_ws):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 30)
        codes.append(closed.value.rcvd.code if closed.value.rcvd else None)
    # uvicorn shuts down gracefully, then re-raises the signal: the exit status is "terminated".
    assert await asyncio.to_thread(proc.wait, 30) in (0, -signal.SIGTERM)
    assert set(codes) <= {1000, 1001, 1012}, codes  # a clean close the pages reconnect after

    row = await TerminalSession.objects.aget(pk=session["id"])
    assert row.status == "ended" and row.end_reason == "shutdown"
    assert await AuditEvent.objects.filter(action="terminal.session_end", target_id=session["id"]).aexists()
    answer = await ChatMessage.objects.filter(session_id=chat["id"], role="assistant").alast()
    assert answer.status != "streaming" and answer.content.startswith("t0 ")
    verify = await asyncio.to_thread(subprocess.run, [sys.executable, "manage.py", "verify_audit"], cwd=ROOT,
                                     env=env, capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
