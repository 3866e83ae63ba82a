"""Instructions a signed-in page request costs, counted by valgrind (callgrind): the figure a
shared, loaded machine does not disturb, where CPU time per request moves by ±30 % between runs.
Not part of `make bench` (bench/run.py runs bench/*.py only); a development tool.

Drives AutoBot's ASGI application in-process (hand-built scopes, a signed-in session and CSRF
cookie, no server), after a warm-up, with callgrind's instrumentation switched on only around
the measured requests (lane threads included), for this tree and, with `--compare DIR`, another
source tree (an earlier commit's: `git worktree add DIR <commit>`) at the same time.

    .venv/bin/python bench/tools/page_instructions.py [--requests 300] [--pages /chat/ /knowledge/] [--compare DIR]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def measure(tree: Path, pages: list[str], requests: int) -> dict[str, float]:
    """Run this script's `--inner` mode under callgrind for `tree`; instructions per request."""
    with tempfile.TemporaryDirectory(prefix="autobot-instructions-") as folder:
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.%p",
                   sys.executable, __file__, "--inner", str(tree), "--requests", str(requests), "--pages", *pages]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    return {page: (totals[page.strip("/") or "root"] - idle) / requests for page in pages}


def inner(tree: Path, pages: list[str], requests: int) -> None:
    with tempfile.TemporaryDirectory(prefix="autobot-instructions-db-") as folder:
        drive(tree, folder, pages, requests)


def drive(tree: Path, folder: str, pages: list[str], requests: int) -> None:
    sys.path[:0] = [str(tree), str(tree / "bench")]
    from common import bench_token, setup_django  # the tree's own bench helpers

    setup_django(folder)
    bench_token()
    from django.contrib.auth import get_user_model
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={_get_new_csrf_string()}".encode()
    from autobot.asgi import application

    async def one(path: str) -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"127.0.0.1"), (b"cookie", cookie)],
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
            for _ in range(requests):
                await one(path)
            control("--instr=off")
            control(f"--dump={path.strip('/') or 'root'}")

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--pages", nargs="+", default=["/chat/", "/knowledge/"])
    parser.add_argument("--compare", metavar="DIR", help="another source tree, measured at the same time")
    parser.add_argument("--inner", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(Path(args.inner), args.pages, args.requests)
        return
    from concurrent.futures import ThreadPoolExecutor

    trees = {"this tree": ROOT, **({"compare": Path(args.compare).resolve()} if args.compare else {})}
    with ThreadPoolExecutor(len(trees)) as pool:
        runs = {name: pool.submit(measure, tree, args.pages, args.requests) for name, tree in trees.items()}
        results = {name: run.result() for name, run in runs.items()}
    print(f"instructions per request (callgrind, {args.requests} requests a page, in-process)")
    for page in args.pages:
        line = f"{page:14} this tree {results['this tree'][page] / 1e6:7.3f} M"
        if "compare" in results:
            before = results["compare"][page]
            line += f"   compare {before / 1e6:7.3f} M   this / compare {results['this tree'][page] / before:.3f}"
        print(line)


if __name__ == "__main__":
    main()
