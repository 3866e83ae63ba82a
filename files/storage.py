"""Async file operations inside one user's root. No Django.

Every function takes ``root`` (the user's directory, trusted) and a user-supplied relative
path, resolves it with ``files.paths`` at the moment of use and works through the returned
directory descriptors. Blocking syscalls run in a worker thread; file contents go through
aiofiles. Errors are the ``StorageError`` family below (plus ``paths.PathRefused``) for the
service layer to map onto HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import logging
import mimetypes
import os
import re
import secrets
import shutil
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Self

import aiofiles
from charset_normalizer import from_bytes

from files import paths
from files.paths import PathRefused
from files.ranges import INLINE_SAFE_TYPES, make_etag

__all__ = ["PathRefused"]  # re-exported for callers that only import storage

PREVIEW_BYTES = 64 * 1024
PREVIEW_PDF_BYTES = 20 * 1024 * 1024  # larger PDFs get metadata only: parsing them is not a preview
log = logging.getLogger("files.storage")
READ_CHUNK = 256 * 1024
# Upload writes are coalesced to this size so a 200 MB file is ~200 thread hops, not 3000.
WRITE_CHUNK = 1024 * 1024
TEMP_PREFIX = paths.RESERVED_PREFIX  # names the API refuses to create
TEMP_SUFFIX = ".part"
BACKUP_SUFFIX = ".old"  # a replaced file, kept until every file of its upload has landed
# The host part of temporary names: letters, digits, dots and hyphens only (it is part of a file name).
_HOST = re.sub(r"[^A-Za-z0-9.-]", "", socket.gethostname())[:64] or "localhost"
# Lock files live in this folder beside the areas (FILES_ROOT/.autobot-locks/<area>.lock).
LOCKS_DIR = ".autobot-locks"
# How long a quota-checked commit waits for the other commits in its area before giving up.
COMMIT_LOCK_WAIT = 30.0


def temp_file_name(suffix: str) -> str:
    """A name for an upload's temporary file (or a replaced file's backup): hidden by
    TEMP_PREFIX, and naming the process that writes it (``<pid>@<host>``), so that a worker
    starting later can tell a dead worker's leftovers from uploads in flight (files/sweep.py)."""
    return f"{TEMP_PREFIX}{secrets.token_hex(8)}-{os.getpid()}@{_HOST}{suffix}"


class StorageError(Exception):
    code = "files_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EntryNotFound(StorageError):
    code = "file_not_found"


class EntryExists(StorageError):
    code = "file_exists"


class NotADirectory(StorageError):
    code = "not_a_directory"


class IsADirectory(StorageError):
    code = "is_a_directory"


class DirectoryNotEmpty(StorageError):
    code = "directory_not_empty"


class InvalidOperation(StorageError):
    code = "invalid_operation"


class FileTooLarge(StorageError):
    code = "too_large"


class QuotaExceeded(StorageError):
    code = "quota_exceeded"


class AreaBusy(StorageError):
    code = "area_busy"


@dataclass(frozen=True)
class Entry:
    name: str
    path: str
    type: str  # "dir" | "file" | "symlink" | "other"
    size: int
    modified: datetime
    mime_type: str


@dataclass(frozen=True)
class Preview:
    entry: Entry
    kind: str  # "text" | "image" | "none"
    text: str | None = None
    encoding: str | None = None
    truncated: bool = False


@dataclass
class Download:
    """An open regular file ready to stream; close it (or exhaust ``chunks``) when done."""

    fd: int
    name: str
    size: int
    modified: datetime
    etag: str
    content_type: str
    inline_safe: bool
    closed: bool = field(default=False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    async def chunks(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield bytes ``start..end`` (inclusive) in ``READ_CHUNK`` pieces via aiofiles."""
        end = self.size - 1 if end is None else end
        # A dup per stream, so multipart/byteranges can read several ranges from one open.
        async with aiofiles.open(os.dup(self.fd), "rb", closefd=True) as handle:
            await handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                data = await handle.read(min(READ_CHUNK, remaining))
                if not data:
                    break  # truncated underneath us; stop rather than spin
                remaining -= len(data)
                yield data


# --- helpers ---------------------------------------------------------------------------


def guess_type(name: str) -> str:
    mime, _ = mimetypes.guess_type(name, strict=False)
    return mime or "application/octet-stream"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _entry(name: str, rel: str, st: os.stat_result) -> Entry:
    kind = _kind(st.st_mode)
    return Entry(
        name=name,
        path=rel,
        type=kind,
        size=st.st_size if kind == "file" else 0,
        modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        mime_type="inode/directory" if kind == "dir" else guess_type(name),
    )


def _not_found(rel: str) -> EntryNotFound:
    return EntryNotFound(f"'{rel or '/'}' does not exist")


def _translate(exc: OSError, rel: str) -> StorageError | OSError:
    """Map the OSErrors users can cause onto StorageErrors; leave the rest alone."""
    if exc.errno == errno.ENOENT:
        return _not_found(rel)
    if exc.errno == errno.ENOTDIR:
        return NotADirectory(f"a component of '{rel}' is not a directory")
    if exc.errno == errno.EEXIST:
        return EntryExists(f"'{rel}' already exists")
    if exc.errno == errno.EISDIR:
        return IsADirectory(f"'{rel}' is a directory")
    if exc.errno == errno.ENOTEMPTY:
        return DirectoryNotEmpty(f"'{rel}' is not empty")
    if exc.errno == errno.ENAMETOOLONG:
        return PathRefused("the path is too long")  # type: ignore[return-value]
    if exc.errno == errno.ELOOP:  # every open is O_NOFOLLOW: something was swapped for a symlink
        return PathRefused("the path changed into a symlink while being opened")  # type: ignore[return-value]
    return exc


async def _to_the_end(func, *args):
    """``asyncio.to_thread``, except that a caller cancelled meanwhile still waits for the thread
    to finish before the cancellation goes on. An upload's commit moves files with the folder's
    descriptor: the clean-up that follows a cancellation (removing temporary files, closing that
    descriptor, whose number the process could then reuse) must not run beside it."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])
        raise


async def _run(func, rel: str, *args, **kwargs):
    """Run blocking filesystem work off the event loop, translating user-caused errors."""
    try:
        return await asyncio.to_thread(func, *args, **kwargs)
    except OSError as exc:
        translated = _translate(exc, rel)
        if translated is exc:
            raise
        raise translated from None


def _parts(path: str | None) -> tuple[tuple[str, ...], str]:
    parts = paths.split_path(path)
    return parts, paths.join_path(parts)


def write_target(root: str, path: str) -> str:
    """Where a file written to ``path`` by ``Upload`` lands, relative to the root: its folder with
    symlinks followed (as ``Upload`` opens it), then its name, which the commit replaces and never
    follows. Blocking (``realpath``); PathRefused as the write would refuse it."""
    parts, _ = _parts(path.strip("/"))  # as services.file_write reads it
    if not parts:
        raise PathRefused("a file needs a name")
    return paths.join_path((*paths.resolve(root, parts[:-1]), parts[-1]))


# --- listing and metadata --------------------------------------------------------------


def _list_sync(root: str, parts: tuple[str, ...], rel: str) -> list[Entry]:
    entries = []
    with paths.open_dir(root, parts) as fd, os.scandir(fd) as scan:
        for item in scan:
            if item.name.startswith(TEMP_PREFIX):
                continue  # uploads in flight are not files yet
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while listing
            child = f"{rel}/{item.name}" if rel else item.name
            entries.append(_entry(item.name, child, st))
    entries.sort(key=lambda e: (e.type != "dir", e.name.casefold(), e.name))
    return entries


async def entries_list(root: str, path: str | None, *, limit: int = 100, offset: int = 0) -> tuple[list[Entry], int]:
    """Directories first, then files, by case-folded name; paginated."""
    parts, rel = _parts(path)
    entries = await _run(_list_sync, rel, root, parts, rel)
    return entries[offset : offset + limit], len(entries)


def _stat_sync(root: str, parts: tuple[str, ...], rel: str) -> Entry:
    if not parts:
        with paths.open_dir(root, ()) as fd:
            return _entry("", "", os.fstat(fd))
    with paths.open_parent(root, parts) as (fd, name):
        return _entry(name, rel, os.stat(name, dir_fd=fd, follow_symlinks=False))


async def entry_stat(root: str, path: str | None) -> Entry:
    parts, rel = _parts(path)
    return await _run(_stat_sync, rel, root, parts, rel)


def _usage_sync(root: str) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.startswith(TEMP_PREFIX):
                continue  # uploads in flight (and their backups) are not the user's files yet
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


async def usage(root: str) -> int:
    """Bytes used by regular files under ``root`` (symlinks are not followed), not counting the
    temporary files of uploads in flight: they count once committed."""
    return await asyncio.to_thread(_usage_sync, root)


# --- mutations -------------------------------------------------------------------------


def _mkdir_sync(root: str, parts: tuple[str, ...], rel: str) -> Entry:
    with paths.open_parent(root, parts) as (fd, name):
        os.mkdir(name, 0o755, dir_fd=fd)
        return _entry(name, rel, os.stat(name, dir_fd=fd, follow_symlinks=False))


async def dir_make(root: str, path: str) -> Entry:
    parts, rel = _parts(path)
    if not parts:
        raise EntryExists("the root folder already exists")
    paths.validate_new_name(parts[-1])
    return await _run(_mkdir_sync, rel, root, parts, rel)


def _exists(name: str, fd: int) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _is_dir(name: str, fd: int) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


# renameat2(2) with RENAME_NOREPLACE (Linux 3.15+, glibc 2.28+): an atomic "rename unless the
# target exists". Python's os module has no binding, so it is called through ctypes.
RENAME_NOREPLACE = 1


def _load_renameat2():
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def rename_noreplace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> bool:
    """Rename ``src`` to ``dst`` (each relative to its directory descriptor) only if ``dst``
    does not exist, in one system call: ``FileExistsError`` if it does.

    Returns False, having done nothing, where that call is unavailable (no ``renameat2`` in the C
    library: ENOSYS; a filesystem without RENAME_NOREPLACE: EINVAL); the caller then falls back to
    check-then-rename. Any other failure is raised as the ``OSError`` ``os.rename`` would raise.
    """
    if _renameat2 is None:
        return False
    if _renameat2(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        # EINVAL is also "a folder into itself"; the fallback's rename reports that precisely.
        return False
    raise OSError(err, os.strerror(err), src, None, dst)


def _move_sync(root: str, src: tuple[str, ...], dst: tuple[str, ...], overwrite: bool) -> Entry:
    src_rel, dst_rel = paths.join_path(src), paths.join_path(dst)
    if dst[: len(src)] == src:
        raise InvalidOperation("a folder cannot be moved into itself")
    with (
        paths.open_parent(root, src) as (sfd, sname),
        paths.open_parent(root, dst) as (dfd, dname),
    ):
        try:
            os.stat(sname, dir_fd=sfd, follow_symlinks=False)
        except FileNotFoundError:
            raise _not_found(src_rel) from None
        exists = EntryExists(f"'{dst_rel}' already exists; pass overwrite to replace it")
        try:
            if overwrite:
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
            elif not rename_noreplace(sfd, sname, dfd, dname):
                # No atomic no-replace rename here: check, then rename (a name created in
                # between would be replaced; only on systems without renameat2).
                if _exists(dname, dfd):
                    raise exists
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
        except FileExistsError:
            if not overwrite:
                raise exists from None
            raise EntryExists(f"'{dst_rel}' exists and cannot be replaced by '{src_rel}'") from None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise InvalidOperation("a folder cannot be moved into itself") from None
            if exc.errno in (
                errno.EISDIR,
                errno.ENOTDIR,
                errno.ENOTEMPTY,
                errno.EEXIST,
            ):
                raise EntryExists(f"'{dst_rel}' exists and cannot be replaced by '{src_rel}'") from None
            if exc.errno == errno.EXDEV:
                raise InvalidOperation("cannot move across filesystems") from None
            raise
        return _entry(dname, dst_rel, os.stat(dname, dir_fd=dfd, follow_symlinks=False))


async def entry_move(root: str, src: str, dst: str, *, overwrite: bool = False) -> Entry:
    """Move or rename ``src`` to ``dst`` (the full new path, not a folder to move into)."""
    src_parts, src_rel = _parts(src)
    dst_parts, _ = _parts(dst)
    if not src_parts or not dst_parts:
        raise InvalidOperation("the root folder cannot be moved or replaced")
    if dst_parts[-1] != src_parts[-1]:
        paths.validate_new_name(dst_parts[-1])  # a new name; moving keeps an existing one
    return await _run(_move_sync, src_rel, root, src_parts, dst_parts, overwrite)


def _tree_size(fd: int) -> int:
    """Bytes of regular files below an open directory, never following symlinks."""
    total = 0
    with os.scandir(fd) as scan:
        for item in scan:
            st = item.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                child = os.open(item.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    total += _tree_size(child)
                finally:
                    os.close(child)
    return total


def _delete_sync(root: str, parts: tuple[str, ...], rel: str, recursive: bool) -> Entry:
    with paths.open_parent(root, parts) as (fd, name):
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        entry = _entry(name, rel, st)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=fd)
            return entry
        if not recursive:
            try:
                os.rmdir(name, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ENOTEMPTY:
                    raise DirectoryNotEmpty(
                        f"'{rel}' is not empty; pass recursive=true to delete it with its contents"
                    ) from None
                raise
            return entry
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        try:
            size = _tree_size(child)
        finally:
            os.close(child)
        # rmtree with dir_fd uses openat/unlinkat and never follows symlinks (it
        # "avoids symlink attacks" on Linux), so a link swapped in mid-delete is unlinked,
        # not descended into.
        shutil.rmtree(name, dir_fd=fd)
        return Entry(entry.name, entry.path, entry.type, size, entry.modified, entry.mime_type)


async def entry_delete(root: str, path: str, *, recursive: bool = False) -> Entry:
    """Delete a file or link; a folder only when empty or with ``recursive``.

    The returned entry's ``size`` is the bytes freed (for the audit log).
    """
    parts, rel = _parts(path)
    if not parts:
        raise InvalidOperation("the root folder cannot be deleted")
    return await _run(_delete_sync, rel, root, parts, rel, recursive)


# --- reading ---------------------------------------------------------------------------


def _open_sync(root: str, parts: tuple[str, ...]) -> Download:
    fd = paths.open_file(root, parts)
    st = os.fstat(fd)
    name = parts[-1]
    content_type = guess_type(name)
    return Download(
        fd=fd,
        name=name,
        size=st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        etag=make_etag(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino),
        content_type=content_type,
        inline_safe=content_type in INLINE_SAFE_TYPES,
    )


async def file_open(root: str, path: str) -> Download:
    parts, rel = _parts(path)
    return await _run(_open_sync, rel, root, parts)


def _detect_text(sample: bytes, *, truncated: bool = False) -> tuple[str, str] | None:
    if not sample:
        return "", "utf-8"
    if b"\x00" in sample:
        return None  # binary
    # UTF-8 first: it is the common case, it is exact, and a 64 KiB cut can split a character,
    # which would push the detector towards a wrong single-byte encoding.
    for cut in range(4 if truncated else 1):
        try:
            return sample[: len(sample) - cut].decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            continue
    match = from_bytes(sample).best()
    if match is None:
        return None
    return str(match), match.encoding


async def _pdf_preview(entry: Entry, data: bytes, max_operations: int | None) -> Preview:
    from knowledge.extract import PDF_MAX_OPERATIONS, ExtractionError, extract_pdf

    try:
        # A preview needs only its first 64 KiB of text; the budget bounds PDFs made to be slow.
        text = (await asyncio.to_thread(extract_pdf, data, max_chars=PREVIEW_BYTES + 1,
                                        max_operations=max_operations or PDF_MAX_OPERATIONS)).text
    except ExtractionError:
        return Preview(entry=entry, kind="none")
    return Preview(entry=entry, kind="text", text=text[:PREVIEW_BYTES], encoding="pdf-text",
                   truncated=len(text) > PREVIEW_BYTES)


async def file_preview(root: str, path: str, *, pdf_max_operations: int | None = None) -> Preview:
    """Text: the first 64 KiB decoded (of a PDF: of its text); safe images: flagged for inline; else metadata."""
    parts, rel = _parts(path)
    download = await _run(_open_sync, rel, root, parts)
    try:
        entry = Entry(
            download.name,
            rel,
            "file",
            download.size,
            download.modified,
            download.content_type,
        )
        if download.inline_safe:
            return Preview(entry=entry, kind="image")
        async with aiofiles.open(os.dup(download.fd), "rb", closefd=True) as handle:
            sample = await handle.read(PREVIEW_BYTES)
            if sample.startswith(b"%PDF-"):
                # A PDF's bytes are not text: preview the text inside it (pypdf, in a thread).
                if download.size > PREVIEW_PDF_BYTES:
                    return Preview(entry=entry, kind="none")
                return await _pdf_preview(entry, sample + await handle.read(), pdf_max_operations)
    finally:
        download.close()
    # Encoding detection is CPU work; keep it off the loop.
    detected = await asyncio.to_thread(_detect_text, sample, truncated=download.size > len(sample))
    if detected is None:
        return Preview(entry=entry, kind="none")
    text, encoding = detected
    return Preview(
        entry=entry,
        kind="text",
        text=text,
        encoding=encoding,
        truncated=download.size > len(sample),
    )


# --- uploads ---------------------------------------------------------------------------


@dataclass
class _Staged:
    name: str
    temp_name: str
    handle: object | None = None
    size: int = 0
    replaces: int = 0  # bytes of the file it overwrites (when the upload began)
    buffer: bytearray = field(default_factory=bytearray)


def area_lock_path(root: str) -> str:
    """The lock file that makes quota-checked commits in the area ``root`` take turns.

    It lives beside the areas (``FILES_ROOT/.autobot-locks/<area>.lock``), never inside one: the
    Files API cannot name it, listings and ``usage`` never see it, and the terminal's shell, which
    works in the area, cannot list or delete it by accident. ``services.area_path`` refuses
    ``LOCKS_DIR`` as a username, so it is never an area either.
    """
    real = os.path.realpath(root)
    return os.path.join(os.path.dirname(real), LOCKS_DIR, os.path.basename(real) + ".lock")


def _try_lock_sync(path: str) -> int | None:
    """Take an exclusive ``flock`` on ``path`` (created if missing) without waiting.

    Returns the descriptor that holds it (closing it releases the lock), or None if another
    process, or another upload in this one, holds it. ``flock`` locks belong to the open file,
    so two opens conflict even within one process, and the kernel drops the lock if the
    holder dies.
    """
    folder, name = os.path.split(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Make sure the locked file is still the one at ``path``: if it was deleted (and
            # recreated) meanwhile, others lock the new file and this lock excludes no one.
            held = os.fstat(fd)
            current = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                return fd
        except (BlockingIOError, FileNotFoundError):
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None
    finally:
        os.close(dir_fd)


def _replaced_size(name: str, dir_fd: int) -> int:
    """Bytes ``usage`` counts for ``name`` now, which replacing it frees (0 if it is not a file)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class Upload:
    """Stage one or more files in a folder, then commit them all or leave nothing.

    Each file is written to a hidden temporary file *in the destination folder* (same
    filesystem, so the final ``rename`` is atomic), flushed, fsynced, and only then moved into
    place. Limits are checked as bytes arrive, so an oversized body is refused before it is
    all on disk. With a quota the commit checks it again, against what the area holds by then
    (see ``commit``). Use as ``async with Upload(...) as up:``; leaving the block with an
    exception (including cancellation when the client disconnects) removes every temporary file.
    """

    def __init__(
        self,
        root: str,
        folder: str | None,
        *,
        overwrite: bool = False,
        max_file_bytes: int | None = None,
        quota_bytes: int | None = None,
    ) -> None:
        self.root = root
        self.parts, self.folder = _parts(folder)
        self.overwrite = overwrite
        self.max_file_bytes = max_file_bytes
        self.quota_bytes = quota_bytes
        self.used = 0
        self.staged: list[_Staged] = []
        self.committed: list[Entry] = []
        self._dir_fd: int | None = None
        self._current: _Staged | None = None

    async def __aenter__(self) -> Self:
        self._dir_fd = await _run(self._open_dir_sync, self.folder)
        if self.quota_bytes is not None:
            self.used = await usage(self.root)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                await asyncio.shield(self._abort())
        finally:
            if self._dir_fd is not None:
                os.close(self._dir_fd)
                self._dir_fd = None

    def _open_dir_sync(self) -> int:
        manager = paths.open_dir(self.root, self.parts)
        fd = manager.__enter__()
        # Keep our own descriptor beyond the context manager's lifetime.
        kept = os.dup(fd)
        manager.__exit__(None, None, None)
        if not stat.S_ISDIR(os.fstat(kept).st_mode):
            os.close(kept)
            raise NotADirectory(f"'{self.folder}' is not a folder")
        return kept

    def _rel(self, name: str) -> str:
        return f"{self.folder}/{name}" if self.folder else name

    @property
    def staged_bytes(self) -> int:
        return sum(s.size for s in self.staged)

    @property
    def replaced_bytes(self) -> int:
        return sum(s.replaces for s in self.staged)

    def _quota_error(self) -> QuotaExceeded:
        return QuotaExceeded(f"this upload would exceed your storage quota of {_human(self.quota_bytes)}")

    async def file_begin(self, name: str) -> None:
        """Start a new file; refuses bad names and (without overwrite) existing targets."""
        await self._finish_current()
        paths.validate_new_name(name)
        if any(s.name == name for s in self.staged):
            raise EntryExists(f"'{name}' appears twice in this upload")
        dir_fd = self._dir_fd
        if not self.overwrite and await asyncio.to_thread(_exists, name, dir_fd):
            raise EntryExists(f"'{self._rel(name)}' already exists; pass overwrite=true to replace it")
        replaces = 0
        if self.overwrite:
            if await asyncio.to_thread(_is_dir, name, dir_fd):
                # Refuse now, not at commit time after earlier files have replaced theirs.
                raise EntryExists(f"'{self._rel(name)}' is a folder")
            replaces = await asyncio.to_thread(_replaced_size, name, dir_fd)
        temp_name = temp_file_name(TEMP_SUFFIX)

        def opener(path: str, flags: int) -> int:
            return os.open(
                path,
                flags | os.O_NOFOLLOW | os.O_EXCL | os.O_CLOEXEC,
                0o644,
                dir_fd=dir_fd,
            )

        staged = _Staged(name=name, temp_name=temp_name, replaces=replaces)
        self.staged.append(staged)
        staged.handle = await aiofiles.open(temp_name, "wb", opener=opener)
        self._current = staged

    async def file_write(self, data: bytes) -> None:
        staged = self._current
        if staged is None:
            raise InvalidOperation("file data arrived before a file began")
        staged.size += len(data)
        if self.max_file_bytes is not None and staged.size > self.max_file_bytes:
            raise FileTooLarge(f"'{staged.name}' is larger than the upload limit of {_human(self.max_file_bytes)}")
        # Early check against the usage measured when the upload began; commit checks again.
        if self.quota_bytes is not None and self.used - self.replaced_bytes + self.staged_bytes > self.quota_bytes:
            raise self._quota_error()
        staged.buffer += data
        if len(staged.buffer) >= WRITE_CHUNK:
            await self._flush(staged)

    async def _flush(self, staged: _Staged) -> None:
        if staged.buffer:
            await staged.handle.write(bytes(staged.buffer))  # type: ignore[union-attr]
            staged.buffer.clear()

    async def _finish_current(self) -> None:
        staged, self._current = self._current, None
        if staged is None:
            return
        await self._flush(staged)
        handle = staged.handle
        await handle.flush()  # type: ignore[union-attr]
        await asyncio.to_thread(os.fsync, handle.fileno())  # type: ignore[union-attr]
        await handle.close()  # type: ignore[union-attr]
        staged.handle = None

    async def commit(self) -> list[Entry]:
        """Move every staged file into place; returns their entries.

        With a quota, the commits in one area take turns under a lock file that every process
        on the host shares (``area_lock_path``), and each measures the area again before placing
        anything: uploads running side by side all passed the early check against the usage from
        before any of them landed, and only those that still fit may land. One that no longer
        fits raises ``QuotaExceeded`` with nothing placed. Waiting for the lock never holds a
        thread: each attempt (lock, check, commit, unlock) is one non-blocking call in a worker
        thread, retried with a short back-off on the loop; after ``COMMIT_LOCK_WAIT`` seconds the
        upload gives up with ``AreaBusy``.
        """
        await self._finish_current()
        if self.quota_bytes is None:
            return await _to_the_end(self._commit_sync)
        lock_path = area_lock_path(self.root)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COMMIT_LOCK_WAIT
        delay = 0.002
        while True:
            committed = await _to_the_end(self._commit_locked_sync, lock_path)
            if committed is not None:
                return committed
            if loop.time() >= deadline:
                raise AreaBusy("other uploads to this files area are still being saved; try again shortly")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _commit_locked_sync(self, lock_path: str) -> list[Entry] | None:
        """Lock the area, check the quota against what is committed now, commit, unlock; or
        None, having done nothing, if another commit holds the lock. Taking and releasing the
        lock in the same call means a cancelled request can never leave it held, nor release it
        while its files are still being moved."""
        try:
            lock_fd = _try_lock_sync(lock_path)
        except OSError as exc:  # the lock folder or file is not what it must be (a file, a folder…)
            log.error("files: cannot use the commit lock %s: %s", lock_path, exc)
            raise AreaBusy("uploads to this files area cannot be saved right now; the administrator has "
                           "been told") from None
        if lock_fd is None:
            return None
        try:
            self._check_quota_sync()
            return self._commit_sync()
        finally:
            os.close(lock_fd)

    def _check_quota_sync(self) -> None:
        """Refuse if the upload no longer fits: the area's committed bytes now (uploads that
        landed since this one began included, temporary files not), less the files it
        replaces, plus its own."""
        used = _usage_sync(self.root)
        freed = sum(_replaced_size(s.name, self._dir_fd) for s in self.staged) if self.overwrite else 0
        if used - freed + self.staged_bytes > self.quota_bytes:
            raise self._quota_error()

    def _commit_sync(self) -> list[Entry]:
        """Rename every staged file into place; if one fails, undo the ones already placed
        (restoring any file they replaced), so the request lands completely or not at all."""
        fd = self._dir_fd
        placed: list[tuple[_Staged, str | None]] = []  # (file, backup of what it replaced)
        try:
            for staged in list(self.staged):
                backup = None
                if self.overwrite:
                    if _is_dir(staged.name, fd):
                        raise EntryExists(f"'{self._rel(staged.name)}' is a folder")
                    # Keep the file being replaced (a second link to it) until all have landed.
                    backup = temp_file_name(BACKUP_SUFFIX)
                    try:
                        os.link(staged.name, backup, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:
                        backup = None
                    try:
                        os.replace(staged.temp_name, staged.name, src_dir_fd=fd, dst_dir_fd=fd)
                    except IsADirectoryError:
                        raise EntryExists(f"'{self._rel(staged.name)}' is a folder") from None
                    except BaseException:
                        if backup is not None:
                            os.unlink(backup, dir_fd=fd)
                        raise
                else:
                    # link() fails if the name exists, closing the race a stat-then-rename has.
                    try:
                        os.link(
                            staged.temp_name,
                            staged.name,
                            src_dir_fd=fd,
                            dst_dir_fd=fd,
                            follow_symlinks=False,
                        )
                    except FileExistsError:
                        raise EntryExists(
                            f"'{self._rel(staged.name)}' already exists; pass overwrite=true to replace it"
                        ) from None
                    os.unlink(staged.temp_name, dir_fd=fd)
                self.staged.remove(staged)
                placed.append((staged, backup))
        except BaseException:
            self._rollback_sync(placed)
            raise
        for staged, backup in placed:
            if backup is not None:
                os.unlink(backup, dir_fd=fd)
            st = os.stat(staged.name, dir_fd=fd, follow_symlinks=False)
            self.committed.append(_entry(staged.name, self._rel(staged.name), st))
        os.fsync(fd)  # make the renames durable too
        return self.committed

    def _rollback_sync(self, placed: list[tuple[_Staged, str | None]]) -> None:
        fd = self._dir_fd
        for staged, backup in reversed(placed):
            try:
                if backup is not None:
                    os.replace(backup, staged.name, src_dir_fd=fd, dst_dir_fd=fd)
                else:
                    os.unlink(staged.name, dir_fd=fd)
            except OSError:
                pass  # best effort; the original error is what the caller needs

    async def _abort(self) -> None:
        for staged in self.staged:
            if staged.handle is not None:
                try:
                    await staged.handle.close()  # type: ignore[union-attr]
                except OSError:
                    pass
        fd = self._dir_fd
        names = [s.temp_name for s in self.staged]
        self.staged.clear()
        self._current = None

        def remove() -> None:
            for name in names:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass

        await asyncio.to_thread(remove)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.0f} {unit}"
        value /= 1024
    return f"{size} bytes"
