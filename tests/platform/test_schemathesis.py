"""schemathesis against a throw-away real server: zero 5xx, zero responses that break their
documented schema, zero undocumented status codes, as staff and as an ordinary user.

The server is uvicorn on a loopback port with its own var dir and SQLite database (migrated
here), so nothing the run creates, deletes or types reaches the test database or the host.
Operations that would run commands, fetch URLs or revoke the caller's token get safe values
from tests/platform/schemathesis_hooks.py; none is excluded. Examples are bounded (and the seed
fixed) so a run takes a few minutes on two cores.
"""

import contextlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, run_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
CSRF = "schemathesisschemathesisschemath"  # any 32 characters: the cookie and the header must agree
MAX_EXAMPLES = os.environ.get("AUTOBOT_SCHEMATHESIS_EXAMPLES", "8")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
SETUP = """
import json
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from autobot.auth import token_create

users = {}
for name, staff in (("st-staff", True), ("st-user", False)):
    user = get_user_model().objects.create_user(name, password="st-password-1", is_staff=staff,
                                                is_superuser=staff)
    user.user_permissions.add(Permission.objects.get(codename="use_terminal"))
    token, raw = async_to_sync(token_create)(actor=None, user=user, name="schemathesis", via="test")
    spare, _ = async_to_sync(token_create)(actor=None, user=user, name="spare", via="test")
    # A browser session too, for the one operation that refuses tokens (POST /api/tokens).
    session = SessionStore()
    session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                    BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
    session.create()
    users[name] = {"token": raw, "token_id": token.pk, "spare_token_id": spare.pk, "session": session.session_key}
print(json.dumps(users))
"""

pytestmark = pytest.mark.timeout(900)


@contextlib.contextmanager
def docs_site(folder: Path):
    """A two-page site on loopback for the crawls the run starts."""
    (folder / "index.html").write_text('<html><title>Docs</title><a href="page.html">page</a>backups</html>')
    (folder / "page.html").write_text("<html><title>Page</title>restore the backup</html>")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(folder))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """(base URL, the users' tokens, docs site URL) of a fresh, migrated server."""
    var = tmp_path_factory.mktemp("schemathesis-var")
    env = {
        "DATABASE_URL": f"sqlite:///{var / 'autobot.sqlite3'}",
        "AUTOBOT_VAR_DIR": str(var),
        "AUTOBOT_FILES_ROOT": str(var / "files"),
        "AUTOBOT_SECRET_KEY": "schemathesis-throw-away-secret-key-0123456789",
    }
    manage_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    manage_env.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=manage_env,
                   check=True)
    made = subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=manage_env,
                          check=True, capture_output=True, text=True)
    users = json.loads(made.stdout.strip().splitlines()[-1])
    with docs_site(tmp_path_factory.mktemp("site")) as site, run_server(var, env) as url:
        yield url, users, site


def _run(url: str, user: dict, site: str, report: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.platform.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "ST_TOKEN_ID": str(user["token_id"]),
        "ST_SPARE_TOKEN_ID": str(user["spare_token_id"]),
        "ST_SITE_URL": site,
    }
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
        "run", f"{url}/api/openapi.json",
        "--header", f"Authorization: Bearer {user['token']}",
        "--header", f"Cookie: sessionid={user['session']}; csrftoken={CSRF}",
        "--header", f"X-CSRFToken: {CSRF}",
        "--checks", CHECKS,
        "--max-examples", MAX_EXAMPLES, "--seed", "14", "--workers", "1",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", str(report),
    ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)


@pytest.mark.parametrize("who", ["st-staff", "st-user"])
def test_schemathesis_finds_nothing(instance, who, tmp_path):
    url, users, site = instance
    result = _run(url, users[who], site, tmp_path)
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    assert selected and selected[1] == selected[2], result.stdout[-3000:]  # no operation left out
    assert f"Tested: {selected[1]}" in result.stdout, result.stdout[-3000:]
    assert result.returncode == 0, (f"schemathesis as {who} (full output: {tmp_path / 'schemathesis.txt'}):\n"
                                    f"{result.stdout[-20000:]}\n{result.stderr[-3000:]}")
