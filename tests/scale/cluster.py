"""AutoBot as it is deployed: two uvicorn workers behind nginx (round robin, no stickiness), on
the test database and a Redis of the test's own (autobot/testbed.py). Loopback only; every
process it starts it stops, and nothing else.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autobot.testbed import NginxProxy, RedisServer
from autobot.testing import ROOT, ServerProcess
from tests.conftest import app_server

__all__ = ["ROOT", "Cluster", "running_cluster", "worker_id"]


def worker_id(server: ServerProcess) -> str:
    """The id the worker writes into rows it owns (autobot/workers.py)."""
    return f"{socket.gethostname()}:{server.pid}"


@contextmanager
def running_cluster(folder: Path, *, extra_env: dict | None = None) -> Iterator[Cluster]:
    """A started cluster for a module's tests; stopped (every process it started) on leaving."""
    cluster = Cluster(folder, extra_env=extra_env)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


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
        self.nginx: NginxProxy | None = None

    @property
    def address(self) -> str:
        return self.nginx.address

    def start(self) -> Cluster:
        self.redis.start()
        self.env["REDIS_URL"] = self.redis.url
        self.workers = [app_server(self.folder / "var", env=self.env, name=f"worker-{i}")
                        for i in range(self.worker_count)]
        for worker in self.workers:
            worker.start()
        self.nginx = NginxProxy(self.folder / "nginx", [w.address for w in self.workers]).start()
        return self

    def restart_worker(self, index: int) -> None:
        """Start a killed or stopped worker again on the same port (nginx's upstream)."""
        self.workers[index].start()

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
