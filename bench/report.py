"""One table for the whole benchmark suite: each benchmark records its figures here, and
`bench/run.py` (``make bench``) prints them together and writes bench/results/latest.json.

In a benchmark, after measuring:

    from report import record
    record("GET /api/chat/sessions, 100 connections", 1234, "req/s",
           baseline=980, baseline_name="stock ninja GET /api/aping", target=">= 1.5x baseline",
           passed=1234 >= 1.5 * 980)

`record` prints nothing and stores nothing when the benchmark runs on its own (not under
``make bench``): its own printout is the report then. Under the runner, `AUTOBOT_BENCH_RESULTS`
names a file that gets one JSON line per figure.

Not a benchmark itself: ``make bench`` runs every ``bench/*.py``, so run as a script it only
says so.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path

RESULTS_ENV = "AUTOBOT_BENCH_RESULTS"
QUICK_ENV = "AUTOBOT_BENCH_QUICK"


def quick() -> bool:
    """Whether this is ``make bench-quick`` (smaller, shorter runs for development)."""
    return os.environ.get(QUICK_ENV) == "1"


def record(figure: str, value: float, unit: str, *, baseline: float | None = None, baseline_name: str = "",
           target: str = "", passed: bool | None = None, note: str = "") -> None:
    """One figure: its value and unit, the baseline measured in the same run (if any), the
    target as text and whether it was met (None: no target)."""
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    bench = Path(sys.argv[0]).stem
    row = {"bench": bench, "figure": figure, "value": value, "unit": unit, "baseline": baseline,
           "baseline_name": baseline_name, "ratio": _ratio(value, baseline), "target": target,
           "passed": passed, "note": note}
    with open(path, "a") as out:
        out.write(json.dumps(row) + "\n")


def _ratio(value: float, baseline: float | None) -> float | None:
    if baseline in (None, 0) or value is None:
        return None
    return round(value / baseline, 3)


# --- machine facts ------------------------------------------------------------------------


def machine_facts() -> dict:
    """What the figures depend on: cores, load, Python, SQLite, and the Redis and PostgreSQL
    servers when their URLs are set (the test variables, as `make test` uses)."""
    return {
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "redis": _redis_version(os.environ.get("REDIS_URL") or os.environ.get("AUTOBOT_TEST_REDIS_URL")),
        "postgresql": _postgres_version(os.environ.get("AUTOBOT_TEST_DATABASE_URL")),
        "wrk": _wrk_version(),
    }


def _redis_version(url: str | None) -> str | None:
    if not url:
        return None
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            return client.info("server").get("redis_version")
        finally:
            client.close()
    except Exception as exc:  # a fact we could not get is reported as such, not fatal
        return f"unavailable ({type(exc).__name__})"


def _postgres_version(url: str | None) -> str | None:
    if not url:
        return None
    import urllib.parse

    url = url.replace("postgres://", "postgresql://", 1)
    # The test database itself may not exist yet (pytest creates it): the server's own
    # "postgres" database answers the version as well.
    server = urllib.parse.urlsplit(url)._replace(path="/postgres").geturl()
    error = None
    for candidate in (url, server):
        try:
            import psycopg

            with psycopg.connect(candidate, connect_timeout=3) as conn:
                return conn.execute("SHOW server_version").fetchone()[0]
        except Exception as exc:
            error = exc
    return f"unavailable ({type(error).__name__})"


def _wrk_version() -> str | None:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return " ".join(text[0].split()[:2]) if text else None


# --- the table ----------------------------------------------------------------------------


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """The figures as one plain-text table (also pasted into docs/performance.md)."""
    header = ["bench", "figure", "value", "baseline", "ratio", "target", "result"]
    lines = [header]
    for row in rows:
        result = {True: "pass", False: "MISS", None: "-"}[row.get("passed")]
        lines.append([
            row["bench"], row["figure"], f"{_fmt(row['value'])} {row['unit']}",
            f"{_fmt(row['baseline'])} ({row['baseline_name']})" if row.get("baseline") is not None else "-",
            f"{row['ratio']:.2f}x" if row.get("ratio") is not None else "-",
            row.get("target") or "-", result,
        ])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


if __name__ == "__main__":
    print("bench/report.py: the suite's table and results file, nothing to measure")
