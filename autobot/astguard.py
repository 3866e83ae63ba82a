"""One `ast.parse` at a time, on Pythons whose AST conversion keeps its depth count in state
shared by every thread (CPython gh-106905; the machines we run on have 3.11.7).

Python 3.11's traceback formatting parses each frame's source line with `ast.parse` to place
its `^^^^` marks. Two threads formatting at once (a lane logging an error while the loop thread
logs another, or pytest reporting a failure while a lane logs) can interleave their
conversions through a garbage collection; the count then fails its balance check and
`ast.parse` raises `SystemError: AST constructor recursion depth mismatch`. Logging loses that
record; pytest stops the whole run with INTERNALERROR (it did, in CI). A lock around the call
serializes the conversions; parsing a traceback's line takes microseconds, so nobody waits.
"""

import ast
import threading

_lock = threading.RLock()  # re-entrant: a finalizer run by the collection may format a traceback
_parse = ast.parse


def _serialized_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


def install() -> None:
    if ast.parse is not _serialized_parse:
        ast.parse = _serialized_parse
