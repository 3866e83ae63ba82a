"""Safe resolution of user-supplied paths inside a user's files root.

Two layers:

* ``split_path`` / ``validate_name`` are pure string checks. They refuse anything that could
  name a location outside the root (``..``, absolute paths, backslashes, NUL bytes, encoded
  traversal) and names no file should have (``.``/``..``, over-long, control or invisible
  characters only, reserved device names).
* ``open_dir`` / ``open_parent`` / ``open_file`` turn the checked parts into file descriptors
  at the moment of use. They resolve symlinks with ``realpath``, refuse a result outside the
  root, then walk the *resolved* path from the root one component at a time with
  ``O_NOFOLLOW``. If anything was swapped for a symlink between the check and the walk (a
  TOCTOU race, or a link created later in the tree) the walk fails with ``ELOOP`` and the
  path is refused. Callers then work relative to the returned descriptors (``dir_fd=``), so a
  later rename of a parent cannot redirect them outside the root either.

No Django imports: the service layer maps ``PathRefused`` to 403 ``path_forbidden``.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095
# Decode this many layers of percent-encoding when hunting for smuggled traversal.
_DECODE_ROUNDS = 3

# Names Windows treats as devices; refused so downloaded files work everywhere.
_RESERVED_STEMS = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)
# Characters that render as nothing although Unicode does not classify them as spaces.
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e\u034f")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


class PathRefused(Exception):
    """A user-supplied path or name is not acceptable; nothing was touched."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _is_invisible(char: str) -> bool:
    # Cc control, Cf format (zero-width, bidi), Z* separators, Mn combining marks on nothing.
    return (
        char.isspace()
        or char in _BLANK_LOOKALIKES
        or unicodedata.category(char)
        in {
            "Cc",
            "Cf",
            "Zs",
            "Zl",
            "Zp",
            "Mn",
            "Me",
            "Co",
            "Cn",
            "Cs",
        }
    )


def validate_name(name: str) -> str:
    """Check one path component (a file or directory name) and return it unchanged."""
    if not isinstance(name, str) or name == "":
        raise PathRefused("an empty name is not allowed")
    if name in {".", ".."}:
        raise PathRefused(f"the name {name!r} is not allowed")
    if "/" in name or "\\" in name:
        raise PathRefused("a name cannot contain '/' or '\\'")
    if "\x00" in name:
        raise PathRefused("a name cannot contain a NUL byte")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise PathRefused("a name cannot contain control characters")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise PathRefused("a name must be valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise PathRefused(f"a name cannot be longer than {MAX_NAME_BYTES} bytes")
    if all(_is_invisible(c) for c in name):
        raise PathRefused("a name cannot consist only of blank or invisible characters")
    if name.split(".")[0].strip().lower() in _RESERVED_STEMS:
        raise PathRefused(f"the name {name!r} is reserved")
    return name


# Bidirectional controls make "evil\u202etxt.exe" display as "evilexe.txt".
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# storage.TEMP_PREFIX: uploads in flight are hidden from listings under this prefix.
RESERVED_PREFIX = ".autobot-upload-"


def validate_new_name(name: str) -> str:
    """``validate_name`` plus what a name the API *creates* must not have: bidi controls that
    disguise the real extension, and the prefix of in-flight upload files (hidden from lists).
    Existing entries with such names (made from a shell) stay reachable to be renamed or deleted."""
    validate_name(name)
    if any(c in _BIDI_CONTROLS for c in name):
        raise PathRefused("a name cannot contain bidirectional control characters")
    if name.startswith(RESERVED_PREFIX):
        raise PathRefused(f"names starting with {RESERVED_PREFIX!r} are reserved")
    return name


def _check_traversal(text: str) -> None:
    if "\x00" in text:
        raise PathRefused("a path cannot contain a NUL byte")
    if "\\" in text:
        raise PathRefused("a path cannot contain backslashes")
    if text.startswith("/"):
        raise PathRefused("absolute paths are not allowed")
    if any(part in {".", ".."} for part in text.split("/")):
        raise PathRefused("'.' and '..' segments are not allowed")


def split_path(path: str | None) -> tuple[str, ...]:
    """Validate a relative path like ``"docs/2024/report.pdf"`` and return its components.

    ``""`` (or ``None``) is the root itself and gives ``()``. Repeated or trailing slashes are
    tolerated; everything suspicious is refused rather than normalised away.
    """
    if path is None:
        return ()
    if not isinstance(path, str):
        raise PathRefused("a path must be a string")
    _check_traversal(path)
    # A client that double-encodes "../" hopes some later layer decodes it again; refuse it.
    decoded = path
    for _ in range(_DECODE_ROUNDS):
        again = unquote(decoded)
        if again == decoded:
            break
        _check_traversal(again)
        decoded = again
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise PathRefused("a path must be valid UTF-8") from None
    if size > MAX_PATH_BYTES:
        raise PathRefused(f"a path cannot be longer than {MAX_PATH_BYTES} bytes")
    return tuple(validate_name(part) for part in path.split("/") if part != "")


def join_path(parts: tuple[str, ...] | list[str]) -> str:
    """The canonical relative form of ``parts`` (``""`` for the root)."""
    return "/".join(parts)


# --- resolution at use time -------------------------------------------------------------


def _inside(root: str, candidate: str) -> bool:
    return candidate == root or candidate.startswith(root.rstrip("/") + "/")


def _resolved_parts(root: str, parts: tuple[str, ...]) -> tuple[str, ...]:
    """Follow symlinks in ``parts`` and return the result relative to ``root``, or refuse."""
    if not parts:
        return ()
    try:
        real = os.path.realpath(os.path.join(root, *parts))
    except OSError:
        # realpath lstat()s a component, sees a symlink, then readlink()s it: a link swapped for
        # a file or removed in between fails there (EINVAL, ENOENT). The same race as ELOOP below.
        raise PathRefused("the path changed while being opened") from None
    if not _inside(root, real):
        raise PathRefused("the path leads outside your files area")
    rel = os.path.relpath(real, root)
    return () if rel == "." else tuple(rel.split("/"))


def resolve(root: str, parts: tuple[str, ...]) -> tuple[str, ...]:
    """``parts`` with every symlink followed, relative to the (real) root: what ``open_dir`` opens.
    Refuses a result outside the root. Nothing is opened or created."""
    return _resolved_parts(real_root(root), parts)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _walk(root_fd: int, parts: tuple[str, ...]) -> int:
    """Open the directory ``parts`` under ``root_fd`` without following any symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                # O_NOFOLLOW|O_DIRECTORY on a symlink fails with ELOOP or ENOTDIR.
                # ELOOP under O_NOFOLLOW means "a symlink", even if it is gone again by now.
                if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _is_link(part, fd)):
                    raise PathRefused("the path changed into a symlink while being opened") from None
                raise
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_root(root: str) -> int:
    """Open the (trusted, already-real) root directory."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def real_root(root: str) -> str:
    return os.path.realpath(root)


@contextmanager
def open_dir(root: str, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor for the directory ``parts`` (symlinks inside the root are followed)."""
    root = real_root(root)
    resolved = _resolved_parts(root, parts)
    root_fd = open_root(root)
    try:
        fd = _walk(root_fd, resolved)
    finally:
        os.close(root_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_parent(root: str, parts: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """``(parent directory descriptor, last name)`` for operating on the entry itself.

    The last component is *not* followed, so deleting or renaming a symlink acts on the link.
    """
    if not parts:
        raise PathRefused("this operation needs a path below your files root")
    with open_dir(root, parts[:-1]) as fd:
        yield fd, parts[-1]


def open_file(root: str, parts: tuple[str, ...]) -> int:
    """Open a regular file for reading; the caller owns (and closes) the descriptor.

    A final-component symlink is followed only if it stays inside the root, and the file is
    opened by its resolved name with ``O_NOFOLLOW``.
    """
    if not parts:
        raise IsADirectoryError(errno.EISDIR, "the root is a directory")
    root = real_root(root)
    resolved = _resolved_parts(root, parts)
    if not resolved:  # a link back to the root (`ln -s . home` typed in the terminal)
        raise IsADirectoryError(errno.EISDIR, "the root is a directory")
    root_fd = open_root(root)
    try:
        dir_fd = _walk(root_fd, resolved[:-1])
    finally:
        os.close(root_fd)
    try:
        try:
            fd = os.open(resolved[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathRefused("the path changed into a symlink while being opened") from None
            raise
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            # FIFOs and devices would block or leak; only plain files are served.
            raise PathRefused("only regular files can be read")
        if st.st_nlink > 1:
            # A hard link is the same file under another name, and that name may be outside
            # the root (``ln /srv/secret area/x`` from a shell): the symlink rule, for links
            # realpath cannot see. The API itself never leaves a second link behind.
            raise PathRefused("a file with several hard links is not served")
        # O_NONBLOCK was only there so opening a FIFO cannot hang; reads are plain again.
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
