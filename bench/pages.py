"""Page benchmark (issue 15, target 2): what a session-authenticated page request costs, against
a stock Django + ninja endpoint in the same run.

Serves, each with one uvicorn worker on loopback:
- AutoBot as `make run` does, on a throw-away SQLite database with a user who has 20 chat
  sessions and 20 knowledge entries and may use the terminal; the benchmark logs that user in
  through the login form, as a browser does (GET the form, POST it with the CSRF token), and
  requests the pages with the session and CSRF cookies it got;
- bench/stock_app.py's stock ninja endpoint (`GET /api/aping`, no database, no auth).

wrk drives each page in alternating rounds: at 100 connections (p95, the target: < 200 ms) and at
one connection (the server's CPU time per request from /proc, the figure least disturbed by other
work on a shared machine, judged as a ratio to stock ninja's). Not a test: it asserts nothing.

    .venv/bin/python bench/pages.py [--seconds 5] [--rounds 2] [--pages /chat/ /knowledge/]

Before/after in one run: `--compare DIR` serves a second AutoBot from another source tree (an
export of an earlier commit: `git archive <commit> | tar -x -C DIR`) beside this one, on the
same database and with the same session cookie, and measures its pages in the same rounds
(rows "before ...", printed only).
"""

import asyncio
import re
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from common import (  # first: it puts the project root on sys.path
    HOST,
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

ROWS = 20
PASSWORD = "bench-password-123"  # bench_token's
# The pages of the target first; then the other main pages (login and admin are not among them).
PAGES = ["/chat/", "/knowledge/", "/", "/terminal/", "/files/", "/agents/", "/tokens/"]
TARGETED = ("/chat/", "/knowledge/")
STOCK = "stock ninja GET /api/aping"


def seed() -> None:
    """The bench user's rows: ROWS chat sessions and knowledge entries, and the terminal permission
    (without it /terminal/ is a 403 page)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    bench_token()
    user = get_user_model().objects.get(username="bench")
    user.user_permissions.add(Permission.objects.get(codename="use_terminal", content_type__app_label="terminal"))
    seed_lists(rows=ROWS)


async def browser_login(base: str) -> str:
    """Sign in through the login form as a browser does; the Cookie header its pages then carry."""
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/accounts/login/") as resp:
            form = await resp.text()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        data = {"csrfmiddlewaretoken": token, "username": "bench", "password": PASSWORD, "next": "/chat/"}
        async with http.post(f"{base}/accounts/login/", data=data, allow_redirects=False,
                             headers={"Referer": f"{base}/accounts/login/"}) as resp:
            if resp.status != 302:
                raise SystemExit(f"login failed: HTTP {resp.status}")
        cookies = {cookie.key: cookie.value for cookie in http.cookie_jar}
        async with http.get(f"{base}/chat/", allow_redirects=False) as resp:
            if resp.status != 200:
                raise SystemExit(f"the session does not open /chat/: HTTP {resp.status}")
    return "; ".join(f"{name}={value}" for name, value in cookies.items() if name in ("sessionid", "csrftoken"))


def main() -> None:
    parser = wrk_parser(__doc__)
    parser.add_argument("--pages", nargs="+", default=PAGES, help="paths to measure (default: the main pages)")
    parser.add_argument("--compare", metavar="DIR", help="another source tree to serve beside, as 'before'")
    args = parser.parse_args()
    if not wrk_installed():
        return

    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-pages-") as folder, ExitStack() as stack:
        setup_django(folder)
        seed()
        script = Path(folder) / "pct.lua"
        script.write_text(WRK_LUA)
        ports = {"autobot": free_port(), "stock": free_port(), "before": free_port()}
        # Both answer before they are handed over (uvicorn_server and stock_server wait for them).
        servers = {
            "autobot": stack.enter_context(uvicorn_server(folder, ports["autobot"])),
            "stock": stack.enter_context(stock_server(folder, port=ports["stock"])),
        }
        if args.compare:  # uvicorn imports the app from that tree first (--app-dir)
            servers["before"] = stack.enter_context(uvicorn_server(
                folder, ports["before"], "--app-dir", str(Path(args.compare).resolve())))
        base = f"http://{HOST}:{ports['autobot']}"
        cookie = {"Cookie": asyncio.run(browser_login(base))}
        targets = {STOCK: ("stock", "/api/aping", {})}
        for path in args.pages:
            targets[f"page {path}"] = ("autobot", path, cookie)
            if args.compare:
                targets[f"before page {path}"] = ("before", path, cookie)
        runs: dict[tuple[str, int], list[dict]] = {}
        for _round in range(args.rounds):
            for connections in (100, 1):
                for name, (server, path, headers) in targets.items():
                    url = f"http://{HOST}:{ports[server]}{path}"
                    result = wrk(url, connections, args.seconds, servers[server].pid, str(script), headers)
                    runs.setdefault((name, connections), []).append(result)
    report(runs, args, load_before)


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(runs: dict, args, load_before: float) -> None:
    print(load_line(load_before))
    print(f"{args.rounds} round(s) of {args.seconds:.0f} s per page and connection count, medians; "
          "CPU = the server process's CPU time per request")
    print(f"{'endpoint':28} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'CPU ms/req':>10} {'errors':>7}")
    for (name, connections), results in runs.items():
        print(f"{name:28} {connections:5d} {median(results, 'rps'):8.0f} {median(results, 'p50'):8.2f} "
              f"{median(results, 'p95'):8.2f} {median(results, 'p99'):8.2f} {median(results, 'cpu_ms'):10.3f} "
              f"{sum(r['errors'] for r in results):7d}")

    stock_p95 = median(runs[(STOCK, 100)], "p95")
    stock_cpu = median(runs[(STOCK, 1)], "cpu_ms")
    for path in args.pages:
        name = f"page {path}"
        targeted = path in TARGETED
        p95 = median(runs[(name, 100)], "p95")
        record(f"{name} (session), 100 conns, p95", p95, "ms", baseline=stock_p95, baseline_name="stock ninja",
               target="< 200 ms" if targeted else "", passed=p95 < 200 if targeted else None)
        record(f"{name}, CPU per request", median(runs[(name, 1)], "cpu_ms"), "ms", baseline=stock_cpu,
               baseline_name="stock ninja")
    record(f"{STOCK}, 100 conns", round(median(runs[(STOCK, 100)], "rps")), "req/s")
    failed = sum(r["errors"] for results in runs.values() for r in results)
    record("failed requests (all of the above)", failed, "", target="0", passed=failed == 0)


if __name__ == "__main__":
    main()
