"""API benchmark (issue 15, target 1): what an ordinary authenticated, database-reading call
costs, against a stock Django + ninja endpoint in the same run. The pages (target 2) are
bench/pages.py's.

Serves, each with one uvicorn worker on loopback:
- AutoBot as `make run` does, on a throw-away SQLite database with a user who has 20 chat
  sessions and 20 knowledge entries and an API token;
- bench/stock_app.py: a stock minimal Django + django-ninja project (`GET /api/aping`, no
  database, no auth), and a raw ASGI app under the same uvicorn (`GET /`).

wrk drives each endpoint in alternating rounds: at 100 connections (req/s, p95, p99) and at one
connection (latency, and the server's CPU time per request from /proc — the figure least
disturbed by other work on a shared machine). Not a test: it asserts nothing.

    .venv/bin/python bench/api.py [--seconds 5] [--rounds 2]

Before/after in one run: `--compare DIR` serves a second AutoBot from another source tree (an
export of an earlier commit: `git archive <commit> | tar -x -C DIR`) beside this one, on the
same database and with the same token, and measures its two lists in the same rounds (rows
"before ...", printed only, with the per-round ratio of CPU per request after / before).
"""

import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from common import (  # first: it puts the project root on sys.path
    WRK_LUA,
    bench_token,
    free_port,
    load_line,
    machine_load,
    seed_lists,
    setup_django,
    stock_server,
    uvicorn_server,
    wrk,
    wrk_installed,
    wrk_parser,
)
from report import record

from autobot.testing import HOST

ROWS = 20


def seed() -> str:
    """The bench user's API token, with ROWS sessions and entries."""
    token = bench_token()
    seed_lists(rows=ROWS)
    return token


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main() -> None:
    parser = wrk_parser(__doc__)
    parser.add_argument("--compare", metavar="DIR", help="another source tree to serve beside, as 'before'")
    args = parser.parse_args()
    if not wrk_installed():
        return

    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-api-") as folder, ExitStack() as stack:
        setup_django(folder)
        token = seed()
        script = Path(folder) / "pct.lua"
        script.write_text(WRK_LUA)
        ports = {name: free_port() for name in ("autobot", "stock", "raw", "before")}
        servers = {
            "autobot": stack.enter_context(uvicorn_server(folder, ports["autobot"])),
            "stock": stack.enter_context(stock_server(folder, "application", port=ports["stock"])),
            "raw": stack.enter_context(stock_server(folder, "raw_application", port=ports["raw"])),
        }
        if args.compare:  # uvicorn imports the app from that tree first (--app-dir)
            servers["before"] = stack.enter_context(uvicorn_server(
                folder, ports["before"], "--app-dir", str(Path(args.compare).resolve())))

        bearer = {"Authorization": f"Bearer {token}"}
        targets = {
            "raw ASGI GET /": ("raw", "/", {}),
            "stock ninja GET /api/aping": ("stock", "/api/aping", {}),
            "GET /api/health": ("autobot", "/api/health", {}),
            "GET /api/chat/sessions": ("autobot", "/api/chat/sessions", bearer),
            "GET /api/knowledge/entries": ("autobot", "/api/knowledge/entries", bearer),
        }
        if args.compare:  # each list's "before" right after it, so both meet the same moment of the machine
            for name in ("GET /api/chat/sessions", "GET /api/knowledge/entries"):
                targets[name] = targets.pop(name)
                targets[f"before {name}"] = ("before", targets[name][1], bearer)
        runs: dict[tuple[str, int], list[dict]] = {}
        for _round in range(args.rounds):
            for connections in (100, 1):
                for name, (server, path, headers) in targets.items():
                    url = f"http://{HOST}:{ports[server]}{path}"
                    result = wrk(url, connections, args.seconds, servers[server].pid, str(script), headers)
                    runs.setdefault((name, connections), []).append(result)
    report(runs, args, load_before)


def report(runs: dict, args, load_before: float) -> None:
    print(load_line(load_before))
    print(f"{args.rounds} round(s) of {args.seconds:.0f} s per endpoint and connection count, medians; "
          "CPU = the server process's CPU time per request")
    print(f"{'endpoint':34} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'CPU ms/req':>10} {'errors':>7}")
    for (name, connections), results in runs.items():
        print(f"{name:34} {connections:5d} {median(results, 'rps'):8.0f} {median(results, 'p50'):8.2f} "
              f"{median(results, 'p95'):8.2f} {median(results, 'p99'):8.2f} {median(results, 'cpu_ms'):10.3f} "
              f"{sum(r['errors'] for r in results):7d}")

    stock = "stock ninja GET /api/aping"
    stock_rps = median(runs[(stock, 100)], "rps")
    stock_cpu = median(runs[(stock, 1)], "cpu_ms")
    for name in ("GET /api/chat/sessions", "GET /api/knowledge/entries"):
        rps = median(runs[(name, 100)], "rps")
        record(f"{name} ({ROWS} rows, Bearer), 100 conns", round(rps), "req/s", baseline=round(stock_rps),
               baseline_name="stock ninja", target=">= 1000 and >= 1.5x", passed=rps >= 1000 and rps >= 1.5 * stock_rps)
        p99 = median(runs[(name, 100)], "p99")
        record(f"{name}, 100 conns, p99", p99, "ms", baseline=median(runs[(stock, 100)], "p99"),
               baseline_name="stock ninja", target="< 200 ms", passed=p99 < 200)
        p99_one = median(runs[(name, 1)], "p99")
        record(f"{name}, 1 conn, p99", p99_one, "ms", baseline=median(runs[(stock, 1)], "p99"),
               baseline_name="stock ninja", target="< 1.5 ms", passed=p99_one < 1.5)
        record(f"{name}, CPU per request", median(runs[(name, 1)], "cpu_ms"), "ms", baseline=stock_cpu,
               baseline_name="stock ninja")
    raw = "raw ASGI GET /"
    record("stock ninja GET /api/aping, 100 conns", round(stock_rps), "req/s",
           baseline=round(median(runs[(raw, 100)], "rps")), baseline_name="raw ASGI")
    record("GET /api/health, 100 conns", round(median(runs[("GET /api/health", 100)], "rps")), "req/s",
           baseline=round(stock_rps), baseline_name="stock ninja")
    if args.compare:
        compare(runs)
    failed = sum(r["errors"] for results in runs.values() for r in results)
    record("failed requests (all of the above)", failed, "", target="0", passed=failed == 0)


def compare(runs: dict) -> None:
    """After / before per round (the two servers measured back to back in each round), medians."""
    print("after / before, median of the per-round ratios:")
    for name in ("GET /api/chat/sessions", "GET /api/knowledge/entries"):
        for connections, key in ((1, "cpu_ms"), (1, "p50"), (1, "p99"), (100, "rps")):
            after, before = runs[(name, connections)], runs[(f"before {name}", connections)]
            ratio = statistics.median(a[key] / b[key] for a, b in zip(after, before, strict=True) if b[key])
            print(f"  {name:30} {connections:3d} conn {key:7} {median(before, key):9.3f} -> {median(after, key):9.3f}"
                  f"  ({ratio:.3f})")


if __name__ == "__main__":
    main()
