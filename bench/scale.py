"""Target 1 on the scale-out path (issue 15's named next step): the list calls served by two
uvicorn workers behind nginx, against one worker behind the same nginx, in the same run.

One worker gets one core (the GIL), so `bench/api.py` is bounded by the core; this measures what
a second worker adds. The set-up is docs/deployment.md's: PostgreSQL when it answers on
127.0.0.1:5432 (a throw-away database, dropped at the end; SQLite otherwise), a Redis of its own
on another port, the project's nginx site config (autobot/testbed.py) in a temporary prefix, and
the workers `make serve` starts (autobot/testing.py's ServerProcess). Everything — wrk, nginx,
PostgreSQL and the workers — shares this machine's cores, so the figure says what the machine
gives, and the ratio what the second worker adds on it. Not a test: it asserts nothing.

    .venv/bin/python bench/scale.py [--seconds 4] [--rounds 2]
"""

import os
import statistics
import subprocess
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

from common import (  # first: it puts the project root on sys.path
    WRK_LUA,
    ServerProcess,
    bench_token,
    cpu_seconds,
    load_line,
    machine_load,
    seed_lists,
    wrk,
    wrk_installed,
    wrk_parser,
)
from report import record

PG = "postgres://postgres@127.0.0.1:5432"
ROWS = 20
PATHS = ("/api/chat/sessions", "/api/knowledge/entries")


def database(folder: str) -> tuple[str, str | None]:
    """(DATABASE_URL, PostgreSQL database to drop): PostgreSQL when it answers, else SQLite."""
    name = f"autobot_bench_scale_{os.getpid()}"
    made = subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], capture_output=True)
    if made.returncode == 0:
        return f"{PG}/{name}", name
    return f"sqlite:///{folder}/bench.sqlite3", None


def setup(folder: str, database_url: str, redis_url: str) -> dict:
    """Migrate and seed the bench user's lists; the workers' environment."""
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "AUTOBOT_VAR_DIR": folder,
           "AUTOBOT_SECRET_KEY": uuid.uuid4().hex * 2, "AUTOBOT_LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "autobot.settings"}
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return env


def measure(url: str, pids: list[int], seconds: float, script: str, token: str) -> dict:
    """One wrk run at 100 connections; the CPU per request summed over the workers ``pids``."""
    before = sum(cpu_seconds(pid) for pid in pids)
    result = wrk(url, 100, seconds, pids[0], script, {"Authorization": f"Bearer {token}"})
    result["cpu_ms"] = (sum(cpu_seconds(pid) for pid in pids) - before) * 1000 / max(result["rps"] * seconds, 1)
    return result


def main() -> None:
    args = wrk_parser(__doc__).parse_args()
    if not wrk_installed():
        return
    from autobot.testbed import NginxProxy, RedisServer

    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="autobot-bench-scale-") as folder, ExitStack() as stack:
        database_url, pg_name = database(folder)
        if pg_name:
            stack.callback(subprocess.run, ["psql", f"{PG}/postgres", "-qc",
                                            f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"], capture_output=True)
        redis = RedisServer().start()
        stack.callback(redis.stop)
        env = setup(folder, database_url, redis.url)
        token = bench_token()
        seed_lists(rows=ROWS)
        workers = [ServerProcess(env=env, var_dir=folder, name=f"worker-{i}", stop_seconds=15) for i in range(2)]
        for worker in workers:
            stack.callback(worker.stop)
            worker.start()
        one = NginxProxy(Path(folder) / "nginx-one", [workers[0].address]).start()
        stack.callback(one.stop)
        two = NginxProxy(Path(folder) / "nginx-two", [w.address for w in workers]).start()
        stack.callback(two.stop)
        script = Path(folder) / "pct.lua"
        script.write_text(WRK_LUA)

        setups = {"1 worker": (one, [workers[0].pid]), "2 workers": (two, [w.pid for w in workers])}
        runs: dict[tuple[str, str], list[dict]] = {}
        for _round in range(args.rounds):
            for path in PATHS:
                for name, (proxy, pids) in setups.items():
                    result = measure(f"http://{proxy.address}{path}", pids, args.seconds, str(script), token)
                    runs.setdefault((name, path), []).append(result)
        report(runs, args, load_before, "PostgreSQL" if pg_name else "SQLite")


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def report(runs: dict, args, load_before: float, db: str) -> None:
    print(load_line(load_before))
    print(f"{db}, Redis layer, nginx in front; {args.rounds} round(s) of {args.seconds:.0f} s, 100 connections, "
          "medians; CPU = the workers' CPU time per request")
    print(f"{'set-up':10} {'endpoint':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>10} {'errors':>7}")
    for (name, path), results in runs.items():
        print(f"{name:10} {path:26} {median(results, 'rps'):8.0f} {median(results, 'p50'):8.2f} "
              f"{median(results, 'p99'):8.2f} {median(results, 'cpu_ms'):10.3f} {sum(r['errors'] for r in results):7d}")
    for path in PATHS:
        one, two = median(runs[("1 worker", path)], "rps"), median(runs[("2 workers", path)], "rps")
        record(f"GET {path}, 2 workers behind nginx ({db}), 100 conns", round(two), "req/s", baseline=round(one),
               baseline_name="1 worker behind nginx", target=">= 1000", passed=two >= 1000,
               note="every process shares the machine's cores")
        p99 = median(runs[("2 workers", path)], "p99")
        record(f"GET {path}, 2 workers behind nginx, p99", p99, "ms",
               baseline=median(runs[("1 worker", path)], "p99"), baseline_name="1 worker behind nginx",
               target="< 200 ms", passed=p99 < 200)
    failed = sum(r["errors"] for results in runs.values() for r in results)
    record("failed requests (all of the above)", failed, "", target="0", passed=failed == 0)


if __name__ == "__main__":
    main()
