"""The real server in a child process, for tests and benchmarks: `ServerProcess`.

It runs what `make run` runs — uvicorn serving `autobot.asgi:application`, one process — on a
loopback port, with the environment you give it, and waits until `GET /api/health` answers.
Browser tests (tests/e2e/), the cross-process agent tests (tests/agents/test_cluster.py), the
benchmarks (bench/common.py) and scale-out tests (several workers sharing PostgreSQL and Redis)
all start their servers with it.

    server = ServerProcess(env={"DATABASE_URL": db_url, "REDIS_URL": redis_url,
                                "AUTOBOT_SECRET_KEY": key}, var_dir=tmp / "a")
    server.start()      # returns once /api/health answers; ServerFailed (with the log's tail) otherwise
    server.url          # "http://127.0.0.1:<port>"
    server.stop()       # SIGTERM, SIGKILL if it lingers: a clean shutdown
    server.kill()       # SIGKILL now: a crashed worker, for failover tests
    server.start()      # again, same port and var dir: a restarted worker

    with ServerProcess(env=...) as server:   # start() on entry, stop() on exit
        ...

Several workers are several `ServerProcess`es, each on its own port (put nginx in front for the
"no sticky sessions" set-up); `start_all(servers)` starts them side by side. They must share
`AUTOBOT_SECRET_KEY` (sessions, CSRF, the agents bus signature), `DATABASE_URL`, `REDIS_URL`
and, for files, `AUTOBOT_FILES_ROOT`; the secret key is otherwise generated into each worker's
own var dir.

Why here (a module of the product, not of tests/): the benchmarks import it too, and `bench/`
must not depend on the test suite. It uses only the standard library and never imports Django:
a benchmark imports it before setting Django up, and the server's settings come from the
environment given here, not from the parent's.

Signals go to the process it started and nothing else. A server that fails to start, or dies
early, raises `ServerFailed` whose message ends with the last lines of its log
(`<var_dir>/<name>.log`, uvicorn's and Django's output together), so a failing test says why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
POLL_SECONDS = 0.05  # between health probes while a server starts: a child process gives no event to wait on
PORT_ATTEMPTS = 3  # a port picked as free may be taken before the child binds it: pick another


class ServerFailed(RuntimeError):
    """The server did not start (or stopped answering while starting); the message ends with its log."""


def free_port(host: str = HOST) -> int:
    """A port nobody listens on right now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def database_url(db: Mapping) -> str:
    """A `DATABASE_URL` for a server to use the same database as a Django `DATABASES` entry
    (e.g. the test database pytest-django created)."""
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = urllib.parse.quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + urllib.parse.quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db.get('HOST') or HOST}:{db.get('PORT') or 5432}/{db['NAME']}"


class ServerProcess:
    """One uvicorn process serving AutoBot on `host:port`.

    env: variables added to this process's environment (a value of None removes one). The child
    does not inherit `REDIS_URL` (the in-memory layer unless you pass it) nor
    `DJANGO_ALLOW_ASYNC_UNSAFE` (the server keeps Django's async-safety check, or a sync ORM call
    in async code would pass the tests unnoticed).
    var_dir: `AUTOBOT_VAR_DIR` (database, secret key, files unless env says otherwise) and the
    log's folder; a new temporary folder when None.
    port: a free one when None. uvicorn_args: extra options (e.g. `("--log-level", "info")`).
    ready_statuses: health answers that mean "up" — add 503 when a dependency may be down on
    purpose. ready_seconds / stop_seconds: how long start and stop may take.
    command: run this instead of uvicorn (e.g. `make serve`, told its port through env); it gets
    a process group of its own, and stop/kill signal the whole group (its workers too).
    """

    def __init__(self, *, env: Mapping[str, str | None] | None = None, var_dir: str | Path | None = None,
                 port: int | None = None, host: str = HOST, name: str = "server", uvicorn_args: Iterable[str] = (),
                 ready_statuses: Iterable[int] = (200,), ready_seconds: float = 30.0, stop_seconds: float = 10.0,
                 command: Iterable[str] | None = None):
        self.var_dir = Path(var_dir) if var_dir is not None else Path(tempfile.mkdtemp(prefix="autobot-server-"))
        self.host, self.name = host, name
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.uvicorn_args = list(uvicorn_args)
        self.ready_statuses = frozenset(ready_statuses)
        self.ready_seconds, self.stop_seconds = ready_seconds, stop_seconds
        self.log_path = self.var_dir / f"{name}.log"
        self.env = self._environment(env or {})
        self.process: subprocess.Popen | None = None
        self.command = list(command) if command is not None else None

    def _environment(self, extra: Mapping[str, str | None]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
        env.update({"AUTOBOT_VAR_DIR": str(self.var_dir), "AUTOBOT_ALLOWED_HOSTS": "127.0.0.1,localhost",
                    "PYTHONUNBUFFERED": "1"})
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        return env

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """`host:port`, for ws:// URLs and the like."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, wait: bool = True) -> ServerProcess:
        """Start the server and, with `wait`, return once `GET /api/health` gives a ready status.
        To start several at once, start each with `wait=False`, then call `wait_ready()` on each
        (or use `start_all`)."""
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._spawn()
        if wait:
            self.wait_ready()
        return self

    def _spawn(self) -> None:
        argv = self.command or [
            sys.executable, "-m", "uvicorn", "autobot.asgi:application", "--host", self.host,
            "--port", str(self.port), "--no-proxy-headers", "--log-level", "warning", *self.uvicorn_args]
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            log.write(f"== {self.name}: {' '.join(argv[1:])}\n".encode())
            log.flush()
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=self.command is not None)

    def wait_ready(self) -> None:
        """Poll `GET /api/health` until a ready status; ServerFailed if the process exits or
        `ready_seconds` pass (the process is then killed). A port picked here that someone took
        before the child could bind it is replaced, up to PORT_ATTEMPTS times."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return self._poll_ready()
            except ServerFailed:
                port_taken = "address already in use" in self.log_tail().lower()
                if self._fixed_port or not port_taken or attempt == PORT_ATTEMPTS:
                    raise
                self.port = free_port(self.host)
                self._spawn()

    def _poll_ready(self) -> None:
        deadline = time.monotonic() + self.ready_seconds
        last = "no answer"
        while True:
            status = self._health_status()
            if status in self.ready_statuses:
                return
            if status is not None:
                last = f"health answered {status}"
            if not self.running():
                raise ServerFailed(self._failure(f"{self.name} exited with code {self.process.returncode}"))
            if time.monotonic() > deadline:
                self.kill()
                raise ServerFailed(self._failure(f"{self.name} not ready after {self.ready_seconds:g} s ({last})"))
            time.sleep(POLL_SECONDS)

    def _health_status(self) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None  # not listening yet

    def stop(self) -> int | None:
        """SIGTERM (uvicorn's graceful shutdown), SIGKILL after `stop_seconds`; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_seconds)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        return self.process.wait()

    def _signal(self, sig: int) -> None:
        # A command (make serve) has children of its own: signal its whole group.
        if self.command is not None:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def kill(self) -> int | None:
        """SIGKILL now, as a crash would; the exit code (-9)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
        return self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _failure(self, what: str) -> str:
        return f"{what}; last lines of {self.log_path}:\n{self.log_tail()}"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} {self.url} pid={self.pid}>"


def start_all(servers: Iterable[ServerProcess]) -> list[ServerProcess]:
    """Start several servers side by side (their start-ups overlap) and wait until all are
    ready; if one fails, the others are stopped and its ServerFailed propagates."""
    servers = list(servers)
    try:
        for server in servers:
            server.start(wait=False)
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers
