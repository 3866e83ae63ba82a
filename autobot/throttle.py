"""Failed sign-ins: too many for one username, or from one address, within a window lock further
attempts out until the oldest failure leaves the window. Counted per process (each worker keeps
its own), which bounds guessing without any shared store."""

from __future__ import annotations

import threading
import time
from collections import deque


class FailureWindow:
    """The failures per key within the last `window` seconds; a key with `limit` of them waits."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # the login view is sync: several threads at once

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            times = self._prune(key, now)
            return times[0] + self.window - now if len(times) >= self.limit else 0.0

    def fail(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._prune(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of distinct keys must not grow memory forever
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times
