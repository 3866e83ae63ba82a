"""Browser tests: the real server (uvicorn, as `make run`) on a free loopback port, driven by Playwright in
Debian's Chromium. They share the test database file with the test process, so they use
`django_db(transaction=True)` (data must be committed for the server to see it)."""

import contextlib
import os
import shutil
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PASSWORD, app_server

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts"


def pytest_collection_modifyitems(config, items):
    try:
        import playwright  # noqa: F401
        have_playwright = True
    except ImportError:
        have_playwright = False
    if os.path.exists(CHROMIUM) and have_playwright:
        return
    reason = "needs Chromium at /usr/bin/chromium (apt-get install chromium) and the playwright package"
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@contextlib.contextmanager
def run_server(var_dir: Path, extra_env: dict | None = None, log_level: str = "warning"):
    """The real server (uvicorn, as `make run`) on a free loopback port, sharing the test
    database file; yields its URL. Browser tests run in the SQLite pass only."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("browser tests run in the SQLite pass")
    env = {
        "AUTOBOT_FILES_ROOT": str(var_dir / "files"),
        # Browser tests crawl a docs site served on loopback, at full speed.
        "AUTOBOT_KNOWLEDGE_CRAWL_ALLOW_PRIVATE": "true",
        "AUTOBOT_KNOWLEDGE_CRAWL_DELAY": "0",
        **(extra_env or {}),
    }
    with app_server(var_dir, env=env, uvicorn_args=("--log-level", log_level)) as server:
        yield server.url


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, tmp_path_factory):
    with run_server(tmp_path_factory.mktemp("live-var")) as url:
        yield url


@pytest.fixture(scope="session")
def browser(django_db_setup):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which makes Django refuse
    # the sync ORM calls of fixtures. Allowed only while the browser lives; browser tests run
    # last (tests/conftest.py), so no other test runs with the check off.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    # Playwright's wait_for_function evaluates its predicate with eval() in the page, which the
    # Content-Security-Policy forbids; tests/e2e/test_csp.py opens every page with the policy on.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def logged_in_page(page, live_server_url):
    """logged_in_page(user) → the page, logged in through the real login form, on the dashboard."""

    def login(user):
        page.goto(f"{live_server_url}/accounts/login/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server_url}/")
        return page

    return login


class Cable:
    """A TCP relay in front of a server: pages opened at `url` reach the server through it.
    `unplug()` cuts every connection through it and refuses new ones until `plug()`, as a dropped
    network does: the browser's own WebSocket closes (1006). Chromium's offline emulation
    (`context.set_offline`) leaves an open WebSocket open, so it cannot show a drop."""

    def __init__(self, server_url: str):
        self.target = (urlsplit(server_url).hostname, urlsplit(server_url).port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.plugged = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            if not self.plugged:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:  # cut
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def unplug(self) -> None:
        self.plugged = False
        with self.lock:
            cut, self.sockets = self.sockets, []
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def plug(self) -> None:
        self.plugged = True

    def close(self) -> None:
        self.unplug()
        self.listener.close()


@pytest.fixture
def cable():
    """cable(server_url) → a `Cable` in front of that server, closed after the test."""
    cables = []

    def make(server_url: str) -> Cable:
        cables.append(Cable(server_url))
        return cables[-1]

    yield make
    for made in cables:
        made.close()


@pytest.fixture
def artifact_path():
    """artifact_path("name.png") → a path under var/test-artifacts/ (kept after the run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return lambda name: str(ARTIFACTS / name)


def chromium_available() -> bool:
    return bool(shutil.which(CHROMIUM))


@pytest.fixture
def phone_page(browser):
    """phone_page(url, user) → a page 390 px wide (a phone), logged in through the login form."""
    contexts = []

    def open_as(url, user):
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      bypass_csp=True)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def fits_width(page) -> bool:
    """Nothing on the page makes it scroll sideways."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
