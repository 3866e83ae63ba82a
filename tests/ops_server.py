"""A real server in a child process for the ops tests (throttle across workers, start-up sweeps,
metrics across workers, `make serve`).

A subset of `autobot.testing.ServerProcess` from the codebase branch, with the same names, so
that after the merge `from autobot.testing import ServerProcess, database_url` replaces the
import of this module and this file goes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(db) -> str:
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class ServerProcess:
    def __init__(self, *, env: dict, var_dir: Path, name: str = "server", argv: list[str] | None = None):
        self.var_dir, self.name = Path(var_dir), name
        self.port = free_port()
        self.log_path = self.var_dir / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
        self.env.update({"AUTOBOT_VAR_DIR": str(self.var_dir), "AUTOBOT_ALLOWED_HOSTS": "127.0.0.1,localhost",
                         "PYTHONUNBUFFERED": "1", **env})
        self.argv = argv
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv or [sys.executable, "-m", "uvicorn", "autobot.asgi:application", "--host", "127.0.0.1",
                             "--port", str(self.port), "--no-proxy-headers", "--log-level", "warning"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not self._answers():  # a starting process gives no event to wait on: poll its health
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not start; last lines of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self) -> int | None:
        """SIGTERM to its process group (a `make serve` has children), SIGKILL if it lingers."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def kill(self) -> int | None:
        """SIGKILL now, as a crash would."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
