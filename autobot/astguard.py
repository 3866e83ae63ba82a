"""One `ast.parse` at a time, on Pythons whose AST conversion keeps its depth count in state
shared by every thread (CPython gh-106905, fixed in 3.11.8 and 3.12.2; the machines we run on
have 3.11.7).

Python 3.11's traceback formatting parses each frame's source line with `ast.parse` to place
its `^^^^` marks. Two threads formatting at once (a lane logging an error while the loop thread
logs another, or pytest reporting a failure while a lane logs) can interleave their
conversions through a garbage collection; the count then fails its balance check and
`ast.parse` raises `SystemError: AST constructor recursion depth mismatch`. Logging loses that
record; pytest stops the whole run with INTERNALERROR (it did, in CI). A lock around the call
serializes the conversions; parsing a traceback's line takes microseconds, so nobody waits.

A finalizer run by a collection inside a parse may itself wait for a lock (a logging handler's)
that another thread holds while it waits for this one: the lock is given up on after
`WAIT_SECONDS`, and that parse goes ahead unguarded (the rare race, never a hang).
"""

import ast
import sys
import threading

WAIT_SECONDS = 1.0
_lock = threading.RLock()  # re-entrant: a finalizer run by the collection may format a traceback
_parse = ast.parse


def affected(version=sys.version_info) -> bool:
    return version[:3] < (3, 11, 8) or (3, 12) <= version[:2] and version[:3] < (3, 12, 2)


def _serialized_parse(*args, **kwargs):
    if not _lock.acquire(timeout=WAIT_SECONDS):
        return _parse(*args, **kwargs)
    try:
        return _parse(*args, **kwargs)
    finally:
        _lock.release()


def install() -> None:
    if affected() and ast.parse is not _serialized_parse:
        ast.parse = _serialized_parse
