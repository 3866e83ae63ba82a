"""A deployment in miniature for the scale-out tests and the soak benchmark: a Redis of one's
own and nginx in front of several `ServerProcess` workers (autobot/testing.py).

Standard library only, like testing.py. Everything listens on 127.0.0.1; each process started
here is stopped here, and nothing else is signalled (the shared Redis on 6379 is never touched).
nginx runs `deploy/nginx-autobot.conf` — the file docs/deployment.md shows — with only the
upstream servers and the listen port replaced.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from autobot.testing import ROOT, free_port

SITE = ROOT / "deploy" / "nginx-autobot.conf"
POLL_SECONDS = 0.05  # a starting process gives no event to wait on: its port is polled

NGINX_MAIN = """worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
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


class RedisServer:
    """``start()``, ``stop()`` (SIGTERM, waits), ``restart()`` on the same port; ``url`` for db 0.
    It keeps nothing on disk, unless given ``data_dir``: then it keeps everything there (an
    append-only file written at every command), and a restart finds it all again."""

    def __init__(self, port: int | None = None, data_dir: str | None = None):
        self.port = port or free_port()
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        keeps = ["--dir", self.data_dir, "--appendonly", "yes", "--appendfsync", "always"] if self.data_dir else [
            "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *keeps],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._pongs():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(POLL_SECONDS)
        return self

    def _pongs(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def site_config(listen_port: int, upstreams: list[str]) -> str:
    """The site file with ``upstreams`` for its servers (each with the file's own parameters:
    max_fails, fail_timeout) and ``listen_port``."""
    text = SITE.read_text()
    params = re.search(r"^    server [^ ;]+([^;\n]*);", text, re.MULTILINE).group(1)
    servers = "".join(f"    server {address}{params};\n" for address in upstreams)
    text = re.sub(r"(upstream autobot \{\n)(?:    server [^\n]+\n)+", lambda m: m.group(1) + servers, text)
    return text.replace("listen 127.0.0.1:8000;", f"listen 127.0.0.1:{listen_port};")


class NginxProxy:
    """nginx with the project's site config in front of ``upstreams`` (``host:port``), in its own
    prefix folder. ``address`` is where clients connect."""

    def __init__(self, folder: Path, upstreams: list[str]):
        self.prefix = Path(folder)
        self.upstreams = upstreams
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> NginxProxy:
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.prefix / sub, 0o777)  # nginx's workers drop root for an unprivileged user
        site = self.prefix / "autobot.conf"
        site.write_text(site_config(self.port, self.upstreams))
        main = self.prefix / "nginx.conf"
        main.write_text(NGINX_MAIN.format(prefix=self.prefix, site=site))
        with open(self.prefix / "stderr.log", "ab") as log:
            self.proc = subprocess.Popen(["nginx", "-p", str(self.prefix), "-c", str(main)],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while True:  # through the proxy to a worker's health check
            try:
                with urllib.request.urlopen(f"http://{self.address}/api/health", timeout=2):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start; see {self.prefix}") from None
                time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
