"""Instructions a signed-in page request (or, with `--bearer`, an API call) costs, counted by
valgrind (callgrind): the figure a shared, loaded machine does not disturb, where CPU time per
request moves by ±30 % between runs. Not part of `make bench` (bench/run.py runs bench/*.py
only); a development tool.

Drives AutoBot's ASGI application in-process (hand-built scopes, a signed-in session and CSRF
cookie, no server), after a warm-up, with callgrind's instrumentation switched on only around
the measured requests (lane threads included), for this tree and, with `--compare DIR`, another
source tree (an earlier commit's: `git worktree add DIR <commit>`) at the same time.

`--bearer` sends an `Authorization: Bearer` token instead of the cookies, on a database seeded
as bench/api.py's (20 chat sessions and 20 knowledge entries), and measures the two list calls
unless `--pages` names others (target 1). `--keep DIR` leaves callgrind's files there, one dump
a path, for `callgrind_annotate`. `--gc-threshold N` sets the collector's first threshold once
the application is imported (as autobot/asgi.py would after `gc.freeze()`), to measure it;
`--concurrency N` keeps N requests in flight (a server's 100 connections: the collector then
finds their objects alive, which one request at a time it never does).

    .venv/bin/python bench/tools/page_instructions.py [--requests 300] [--pages /chat/ /knowledge/] [--compare DIR]
    .venv/bin/python bench/tools/page_instructions.py --bearer [--keep DIR] [--gc-threshold 10000] [--concurrency 100]
"""

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


API_LISTS = ["/api/chat/sessions", "/api/knowledge/entries"]


def dump_name(path: str) -> str:
    return path.strip("/").replace("/", "-") or "root"


def measure(tree: Path, pages: list[str], requests: int, options: list[str], keep: Path | None) -> dict[str, float]:
    """Run this script's `--inner` mode under callgrind for `tree`; instructions per request."""
    with tempfile.TemporaryDirectory(prefix="autobot-instructions-") as folder:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.%p",
                   sys.executable, __file__, "--inner", str(tree), "--requests", str(requests), *options,
                   "--pages", *pages]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in Path(folder).glob("cg.*"):
                shutil.copy(dump, keep / dump.name)
        totals = {}
        for dump in Path(folder).glob("cg.*"):
            text = dump.read_text(errors="replace")
            name = next((line.split("dump ", 1)[1] for line in text.splitlines()
                         if line.startswith("desc: Trigger: Client Request: dump ")
                         or line.startswith("desc: Trigger: dump ")), None)
            total = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("totals:")), 0)
            if name:
                totals[name.strip()] = total
    idle = totals.pop("idle", 0)  # switching the instrumentation on and off, with no request
    return {page: (totals[dump_name(page)] - idle) / requests for page in pages}


def inner(tree: Path, pages: list[str], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="autobot-instructions-db-") as folder:
        drive(tree, folder, pages, args)


def credentials(bearer: bool) -> tuple[bytes, bytes]:
    """The header that signs the requests in: a bench API token's, or a session's and CSRF cookies."""
    from common import bench_token, seed_lists  # the tree's own bench helpers

    token = bench_token()
    if bearer:
        seed_lists(rows=20)  # as bench/api.py's seed()
        return b"authorization", f"Bearer {token}".encode()
    from django.contrib.auth import get_user_model
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    return b"cookie", f"sessionid={client.cookies['sessionid'].value}; csrftoken={_get_new_csrf_string()}".encode()


def drive(tree: Path, folder: str, pages: list[str], args: argparse.Namespace) -> None:
    sys.path[:0] = [str(tree), str(tree / "bench")]
    from common import setup_django

    # No event-loop watchdog: under callgrind, on a loaded machine, the loop looks stalled and the
    # watchdog's stack-taking and logging would be counted with the requests (up to ~10 % a run).
    setup_django(folder, AUTOBOT_LOOP_WATCHDOG_MS="0")
    signed_in = credentials(args.bearer)
    from autobot.asgi import application

    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    requests, concurrency = args.requests, max(1, args.concurrency)

    async def one(path: str) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), signed_in],
                 "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000)}
        sent = asyncio.Event()
        status = []
        asked = False

        async def receive():
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                sent.set()

        await application(scope, receive, send)
        if status != [200]:
            raise SystemExit(f"{path}: HTTP {status}")

    def control(*args: str) -> None:
        # callgrind reads its commands while the program runs code: keep running until it answered.
        process = subprocess.Popen(["callgrind_control", *args, str(os.getpid())], stdout=subprocess.DEVNULL)
        while process.poll() is None:
            sum(range(1000))

    async def main() -> None:
        for path in pages:  # warm-up: imports, compiled templates and queries, lane threads
            for _ in range(200):
                await one(path)
        control("--zero")
        control("--instr=on")
        control("--instr=off")
        control("--dump=idle")
        for path in pages:
            control("--zero")
            control("--instr=on")
            for start in range(0, requests, concurrency):  # `concurrency` requests in flight at a time
                await asyncio.gather(*(one(path) for _ in range(min(concurrency, requests - start))))
            control("--instr=off")
            control(f"--dump={dump_name(path)}")

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pages", nargs="+", help="paths to measure (default: /chat/ /knowledge/, or with "
                        "--bearer the two list calls)")
    parser.add_argument("--bearer", action="store_true", help="sign in with an API token, rows seeded as bench/api.py")
    parser.add_argument("--gc-threshold", type=int, help="the cyclic collector's first threshold while measuring")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight at a time while measuring")
    parser.add_argument("--keep", metavar="DIR", type=Path, help="keep callgrind's files in DIR/<tree>/")
    parser.add_argument("--compare", metavar="DIR", help="another source tree, measured at the same time")
    parser.add_argument("--inner", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    pages = args.pages or (API_LISTS if args.bearer else ["/chat/", "/knowledge/"])
    if args.inner:
        inner(Path(args.inner), pages, args)
        return
    from concurrent.futures import ThreadPoolExecutor

    options = [*(["--bearer"] if args.bearer else []),
               *(["--gc-threshold", str(args.gc_threshold)] if args.gc_threshold else []),
               "--concurrency", str(args.concurrency)]
    trees = {"this tree": ROOT, **({"compare": Path(args.compare).resolve()} if args.compare else {})}
    with ThreadPoolExecutor(len(trees)) as pool:
        runs = {name: pool.submit(measure, tree, pages, args.requests, options,
                                  args.keep / name.replace(" ", "-") if args.keep else None)
                for name, tree in trees.items()}
        results = {name: run.result() for name, run in runs.items()}
    print(f"instructions per request (callgrind, {args.requests} requests a page, in-process)")
    width = max(14, *map(len, pages))
    for page in pages:
        line = f"{page:{width}} this tree {results['this tree'][page] / 1e6:7.3f} M"
        if "compare" in results:
            before = results["compare"][page]
            line += f"   compare {before / 1e6:7.3f} M   this / compare {results['this tree'][page] / before:.3f}"
        print(line)


if __name__ == "__main__":
    main()
