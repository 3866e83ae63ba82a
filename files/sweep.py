"""Leftovers of uploads whose worker was killed: swept when any worker starts, each audited.

An upload streams into ``.autobot-upload-<random>-<pid>@<host>.part`` beside its destination (and
an overwrite keeps the replaced file as ``….old`` until every file of the upload has landed). The
worker removes them when the request ends, however it ends, unless the worker itself dies. Such
files are hidden from listings and from the quota, so nobody would ever see or remove them.

At start-up a worker removes those whose writer is a process on this host that no longer runs,
and those (any host: a shared volume) not modified for ``FILES_PARTIAL_MAX_AGE_SECONDS``, since a
live upload writes to its file all the time. Each removal follows its audit event,
``files.upload_interrupted``, naming the area, the folder, the size and why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import stat
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model

from autobot import audit
from autobot.workers import worker_gone
from files import storage

log = logging.getLogger("files.sweep")

_LEFTOVER = re.compile(
    re.escape(storage.TEMP_PREFIX) + r"[0-9a-f]{16}-(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)"
    + "(?P<suffix>" + re.escape(storage.TEMP_SUFFIX) + "|" + re.escape(storage.BACKUP_SUFFIX) + ")$"
)
# Names from before temporary names carried their writer: only their age tells.
_UNOWNED = re.compile(re.escape(storage.TEMP_PREFIX) + r"[0-9a-f]{16}(\.part|\.old)$")


@dataclass(frozen=True)
class Leftover:
    area: str  # the first folder under FILES_ROOT: the username
    folder: str  # inside the area, "" for its top
    name: str
    size: int
    reason: str  # "worker_gone" or "stale"
    writer: str  # "<host>:<pid>", or "" when the name does not say
    path: str = ""  # where it is now, under this process's claimed name


def _why(name: str, st: os.stat_result, now: float, max_age: float) -> tuple[str, str] | None:
    """(reason, writer) when ``name`` is an upload's leftover to remove, else None."""
    if not stat.S_ISREG(st.st_mode):
        return None
    match = _LEFTOVER.fullmatch(name)
    writer = ""
    if match:
        writer = f"{match['host']}:{match['pid']}"
        # worker_gone compares with this host's own name; ours went into the file name sanitised.
        if match["host"] == storage._HOST and worker_gone(f"{socket.gethostname()}:{match['pid']}"):
            return "worker_gone", writer
    elif not _UNOWNED.fullmatch(name):
        return None
    return ("stale", writer) if now - st.st_mtime > max_age else None


def leftovers_claim(files_root: str, *, max_age: float, now: float | None = None) -> list[Leftover]:
    """Find the upload leftovers under ``files_root`` and claim each by renaming it to a name of
    this process's (sync: a walk of the whole tree). A rename succeeds for one claimer only, so
    workers starting together never report one file twice; a claimed file that is not removed
    afterwards (its audit event could not be written) is a leftover of this process, swept when
    it has gone. Works through directory descriptors and never follows a symlink, so an area's
    content can't redirect it elsewhere."""
    now = time.time() if now is None else now
    claimed: list[Leftover] = []
    if not os.path.isdir(files_root):
        return claimed
    for dirpath, _dirs, names, dir_fd in os.fwalk(files_root):
        rel = os.path.relpath(dirpath, files_root)
        if rel == ".":
            continue  # the areas themselves, and the lock folder, live at the top
        area, _, folder = rel.partition(os.sep)
        if area == storage.LOCKS_DIR:
            continue
        for name in names:
            if not name.startswith(storage.TEMP_PREFIX):
                continue
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                why = _why(name, st, now, max_age)
                if why is None:
                    continue
                ours = storage.temp_file_name(os.path.splitext(name)[1])
                os.rename(name, ours, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except FileNotFoundError:
                continue  # its upload finished meanwhile, or another worker claimed it first
            claimed.append(Leftover(area, folder.replace(os.sep, "/"), name, st.st_size, *why,
                                    path=os.path.join(dirpath, ours)))
    return claimed


def leftovers_remove(files_root: str, *, max_age: float, now: float | None = None) -> list[Leftover]:
    """Claim and remove at once (no audit): for tools that have no database."""
    claimed = leftovers_claim(files_root, max_age=max_age, now=now)
    for item in claimed:
        os.unlink(item.path)
    return claimed


async def uploads_sweep() -> list[Leftover]:
    """Remove the leftovers of interrupted uploads, each after its audit event is written (see
    the module docstring)."""
    claimed = await asyncio.to_thread(leftovers_claim, str(settings.FILES_ROOT),
                                      max_age=settings.FILES_PARTIAL_MAX_AGE_SECONDS)
    users = {}
    for item in claimed:
        if item.area not in users:
            users[item.area] = await get_user_model().objects.filter(username=item.area).afirst()
        await audit.record(actor=users[item.area], action="files.upload_interrupted", target_type="files_area",
                           target_id=item.area, data={"folder": item.folder, "temp_name": item.name,
                                                      "bytes": item.size, "reason": item.reason,
                                                      "worker": item.writer})
        await asyncio.to_thread(os.unlink, item.path)
    if claimed:
        log.warning("removed %d leftover(s) of interrupted uploads", len(claimed))
    return claimed
