"""Which server process owns a piece of live work (a PTY, a crawl task), and whether it still runs;
whether this process is the whole server.

Live work lives in the memory of the process that started it. Rows that describe it record
WORKER_ID, so any process can tell that work left "running" by a process that has since
stopped will never finish, and mark it so.
"""

import os
import socket

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
_HOST = WORKER_ID.rpartition(":")[0]


def worker_gone(worker_id: str) -> bool:
    """True when worker_id names a process on this host that no longer runs. A process on
    another host can't be checked from here: it counts as alive."""
    if not worker_id:
        return True
    host, _, pid = worker_id.rpartition(":")
    if host != _HOST or worker_id == WORKER_ID:
        return False
    return not (pid.isdigit() and _running(pid))


def _running(pid: str) -> bool:
    """Whether the process runs: its /proc entry is there and it is not a zombie. A worker that died
    stays a zombie until its parent reaps it (uvicorn's supervisor, a test harness), and `wait_gone`
    returns as soon as it died: a check right after must already find it gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # procfs: no disk I/O
            stat = fh.read()
    except OSError:
        return False
    # "pid (comm) state ...": the name may hold spaces and parentheses, the state follows the last ")".
    return stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X")


async def wait_gone(worker_id: str) -> None:
    """Return once the worker process ends. Same host: a pidfd, readable when the process exits
    (no polling). Another host can't be watched from here: this waits until cancelled."""
    import asyncio

    loop = asyncio.get_running_loop()
    host, _, pid = worker_id.rpartition(":")
    if host != _HOST or worker_id == WORKER_ID or not pid.isdigit():
        await loop.create_future()  # never set: the caller cancels
    try:
        fd = os.pidfd_open(int(pid))
    except ProcessLookupError:
        return
    gone = loop.create_future()
    loop.add_reader(fd, lambda: gone.done() or gone.set_result(None))
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def single_process() -> bool:
    """True when this process is the whole server: with the in-memory channel layer (no
    REDIS_URL) no other process can be reached, so live work not found here runs nowhere
    (an answer being generated, a cancel to deliver) and nothing needs relaying."""
    from django.conf import settings

    return settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")
