"""AutoBot as it is deployed: two uvicorn workers behind nginx (round robin, no stickiness), on
PostgreSQL (the test database) and a Redis of the test's own. Loopback only; every process it
starts it stops, and nothing else.

nginx runs ``deploy/nginx-autobot.conf`` (the file docs/deployment.md shows), with only the
upstream servers and the listen port replaced.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from autobot.testing import ServerProcess
from tests.conftest import app_server
from tests.scale.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx-autobot.conf"

NGINX_MAIN = """worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {site};
}}
"""


def site_config(listen_port: int, upstreams: list[str]) -> str:
    text = SITE.read_text()
    servers = "".join(f"    server {address} max_fails=1 fail_timeout=5s;\n" for address in upstreams)
    text = re.sub(r"(upstream autobot \{\n)(?:    server [^\n]+\n)+", lambda m: m.group(1) + servers, text)
    return text.replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{listen_port};")


def worker_id(server: ServerProcess) -> str:
    """The id the worker writes into rows it owns (autobot/workers.py)."""
    import socket

    return f"{socket.gethostname()}:{server.pid}"


class Cluster:
    def __init__(self, folder: Path, *, workers: int = 2, extra_env: dict | None = None):
        self.folder = folder
        self.redis = RedisServer()
        self.worker_count = workers
        self.env = {
            "AUTOBOT_FILES_ROOT": str(folder / "files"),
            "AUTOBOT_TERMINAL_RECORDINGS_DIR": str(folder / "recordings"),
            **(extra_env or {}),
        }
        self.workers: list[ServerProcess] = []
        self.nginx: subprocess.Popen | None = None
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Cluster:
        self.redis.start()
        self.env["REDIS_URL"] = self.redis.url
        self.workers = [app_server(self.folder / "var", env=self.env, name=f"worker-{i}")
                        for i in range(self.worker_count)]
        for worker in self.workers:
            worker.start()
        self._start_nginx()
        return self

    def _start_nginx(self) -> None:
        prefix = self.folder / "nginx"
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(prefix / sub, 0o777)  # nginx's workers drop root for an unprivileged user
        site = prefix / "autobot.conf"
        site.write_text(site_config(self.port, [w.address for w in self.workers]))
        main = prefix / "nginx.conf"
        main.write_text(NGINX_MAIN.format(prefix=prefix, site=site))
        self.nginx = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(main)],
                                      stdout=subprocess.DEVNULL, stderr=open(prefix / "stderr.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 15
        while True:  # a process start has no event to await: poll through the proxy
            try:
                with urllib.request.urlopen(f"http://{self.address}/api/health", timeout=2):
                    return
            except OSError:
                if self.nginx.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start; see {prefix}") from None
                time.sleep(0.1)

    def restart_worker(self, index: int) -> None:
        """Start a killed or stopped worker again on the same port (nginx's upstream)."""
        self.workers[index].start()

    def stop(self) -> None:
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
